"""The site model: frozen, typed objects read from the site YAML.

The file contract is ``shared/spec/site-and-profiles.md``. Units are in every key name
(``capacity_kwh``, ``max_kw``, ``min_up_h``); SOC values are fractions of capacity in
[0, 1]; prices are in the site's currency.

:func:`read_site` refuses a bad file before anything runs, naming the file, the key
path (``batteries[0].soc_min``) and the reason (``must be < soc_max (0.95), got 1.2``).
Unknown keys are errors; ids are unique across the site.
"""

from __future__ import annotations

import math
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from microgrid.errors import ConfigError
from microgrid.site.centre import CentreLink, centre_problems
from microgrid.site.devices import DeviceBinding, device_problems
from microgrid.site.grid import (
    ForecastConfig,
    Grid,
    Location,
    OutageScheduleConfig,
    TariffZone,
    forecast_problems,
    schedule_problems,
)
from microgrid.site.operation import (
    Feeders,
    OptionalFeeders,
    OptionalOutlook,
    OptionalReserve,
    Outlook,
    Reserve,
)
from microgrid.site.values import (
    _NUM,
    AssetId,
    Duration,
    Efficiency,
    Fraction,
    Frozen,
    NonNegative,
    Positive,
    parse_duration,
    problem,
)
from microgrid.yamlio import load_yaml

__all__ = [
    "Battery",
    "CentreLink",
    "Control",
    "Feeders",
    "ForecastConfig",
    "Fuel",
    "Generator",
    "Grid",
    "LoadTier",
    "Location",
    "OutageScheduleConfig",
    "Outlook",
    "PVArray",
    "Reserve",
    "Site",
    "SiteInfo",
    "TariffZone",
    "parse_duration",
    "read_site",
    "site_from_dict",
]

# -- sections ------------------------------------------------------------------------------


class SiteInfo(Frozen):
    """The ``site`` section: name, IANA timezone (local time at the edges), currency."""

    name: Annotated[str, StringConstraints(strict=True, min_length=1)]
    timezone: str = "Europe/Kyiv"
    currency: str = "UAH"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # 'Europe' is a folder of zones
            raise ValueError(f"not an IANA time zone, got {value!r}") from None
        return value


class Control(Frozen):
    """The ``control`` section used by ``run``: interval, horizon, solver gap and time limit."""

    interval: Duration = timedelta(minutes=15)
    horizon: Duration = timedelta(hours=24)
    mip_gap: Annotated[float, Field(ge=0, lt=1, **_NUM)] = 0.001
    """Relative MIP gap at which HiGHS stops."""
    time_limit_s: Positive = 20.0
    """Wall-clock limit given to HiGHS per solve [s]."""
    reserve: OptionalReserve = Reserve()
    """Operating reserve while islanded (``run``; ``off`` turns it off)."""
    feeders: OptionalFeeders = Feeders()
    """Whole-tier shedding with relay timing (``run``; ``off`` turns it off)."""
    outlook: OptionalOutlook = Outlook()
    """The long, coarse plan valuing fuel and stored energy (``run``; ``off`` turns it off)."""

    @model_validator(mode="after")
    def _horizon_whole_steps(self) -> Control:
        steps = self.horizon / self.interval
        if self.horizon < self.interval or abs(steps - round(steps)) > 1e-9:
            raise problem("horizon", f"must be a whole number of intervals ({self.interval}), got {self.horizon}")
        if self.outlook is not None:
            per = self.outlook.step / self.interval
            if self.outlook.step < self.interval or abs(per - round(per)) > 1e-9:
                raise problem("outlook.step", f"must be a whole number of intervals ({self.interval})")
            if timedelta(days=self.outlook.days) <= self.horizon:
                raise problem("outlook.days", f"must reach beyond the horizon ({self.horizon})")
        return self


class Battery(Frozen):
    """A battery system. Powers in kW (AC side), energy in kWh, SOC as a fraction."""

    id: AssetId
    capacity_kwh: Positive
    soc_min: Fraction
    soc_max: Fraction
    max_charge_kw: NonNegative
    max_discharge_kw: NonNegative
    charge_efficiency: Efficiency
    discharge_efficiency: Efficiency
    wear_cost_per_kwh: NonNegative = 0.0
    """Cost per kWh discharged."""
    terminal_value_per_kwh: NonNegative = 0.0
    """Value per kWh stored at the end of the horizon."""
    initial_soc: Fraction
    """SOC used when no state is given (may lie outside [soc_min, soc_max])."""

    @model_validator(mode="after")
    def _band(self) -> Battery:
        if self.soc_min >= self.soc_max:
            raise problem("soc_min", f"must be < soc_max ({self.soc_max}), got {self.soc_min}")
        return self


class Generator(Frozen):
    """A genset. ``min_kw`` is the minimum stable load when running; fuel in the fuel's unit."""

    id: AssetId
    fuel: str
    max_kw: Positive
    min_kw: NonNegative
    fuel_per_kwh: NonNegative
    fuel_per_hour_running: NonNegative
    startup_cost: NonNegative = 0.0
    min_up_h: NonNegative = 0.0
    min_down_h: NonNegative = 0.0
    initial_on: Annotated[bool, Field(strict=True)] = False
    initial_hours_in_state: NonNegative = 0.0

    @model_validator(mode="after")
    def _load_range(self) -> Generator:
        if self.min_kw > self.max_kw:
            raise problem("min_kw", f"must be ≤ max_kw ({self.max_kw}), got {self.min_kw}")
        return self

    def fuel_per_hour(self, kw: float, running: bool) -> float:
        """Fuel burnt delivering ``kw`` [fuel units/h]: ``fuel_per_kwh`` · kW + ``fuel_per_hour_running`` while
        running, 0 when stopped (the fuel curve of the spec's ``F[g,t] = Δ · (a · p + b0 · u)``)."""
        return self.fuel_per_kwh * max(kw, 0.0) + self.fuel_per_hour_running if running else 0.0


class Fuel(Frozen):
    """A fuel: its unit (``l``, ``m3``…), price per unit, and stock now (None = unlimited)."""

    unit: Annotated[str, StringConstraints(strict=True, min_length=1)]
    price_per_unit: NonNegative
    stock: NonNegative | None = None


class PVArray(Frozen):
    """A PV array; its available power comes from the profiles' ``pv.<id>`` column [kW].

    Orientation is used by the clear-sky PV forecast (:mod:`microgrid.forecast.pv`) when the
    site has a ``location``: tilt from horizontal, azimuth clockwise from north (180 = south),
    and the fraction of DC clear-sky power lost before the AC meter (soiling, wiring, inverter).
    """

    id: AssetId
    peak_kw: Positive
    tilt_deg: Annotated[float, Field(ge=0, le=90, **_NUM)] = 30.0
    azimuth_deg: Annotated[float, Field(ge=0, lt=360, **_NUM)] = 180.0
    loss_fraction: Annotated[float, Field(ge=0, lt=1, **_NUM)] = 0.14


class LoadTier(Frozen):
    """A load tier; lower ``priority`` number = more important."""

    id: AssetId
    priority: Annotated[int, Field(strict=True, ge=1)]
    value_of_lost_load_per_kwh: NonNegative


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _cross_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The checks across sections, as (key path, reason) pairs.

    Works on raw, unvalidated data too (skipping values of the wrong type, which get their
    own error), so that a file with both kinds of problems gets them all listed at once.
    """

    def items(section: str) -> list[tuple[int, dict[str, Any]]]:
        value = data.get(section)
        return [(i, x) for i, x in enumerate(value) if isinstance(x, dict)] if isinstance(value, list | tuple) else []

    problems: list[tuple[str, str]] = []
    fuels = data.get("fuels", {})
    for i, gen in items("generators") if isinstance(fuels, dict) else []:
        fuel = gen.get("fuel")
        if isinstance(fuel, str) and fuel not in fuels:
            known = ", ".join(sorted(str(f) for f in fuels)) or "none defined"
            problems.append((f"generators[{i}].fuel", f"names no fuel in 'fuels' ({known}), got {fuel!r}"))
    seen: dict[str, str] = {}
    for section in ("batteries", "generators", "pv", "loads"):
        for i, asset in items(section):
            here, asset_id = f"{section}[{i}].id", asset.get("id")
            if isinstance(asset_id, str) and asset_id in seen:
                problems.append((here, f"id {asset_id!r} already used at {seen[asset_id]}"))
            elif isinstance(asset_id, str):
                seen[asset_id] = here
    tiers = [
        (i, t.get("id"), t["priority"], float(t["value_of_lost_load_per_kwh"]))
        for i, t in items("loads")
        if _is_number(t.get("priority")) and _is_number(t.get("value_of_lost_load_per_kwh"))
    ]
    for i, _, priority, voll in tiers:
        worse = [(o_id, o_voll) for _, o_id, o_prio, o_voll in tiers if o_prio > priority and o_voll > voll]
        if worse:
            other, other_voll = worse[0]
            problems.append(
                (
                    f"loads[{i}].value_of_lost_load_per_kwh",
                    f"must be ≥ that of the less important tier {other!r} ({other_voll}), got {voll}",
                )
            )
    return (
        problems
        + forecast_problems(data)
        + schedule_problems(data)
        + device_problems(data)
        + _reserve_problems(data)
        + centre_problems(data)
    )


def _reserve_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    control = data.get("control")
    reserve = control.get("reserve") if isinstance(control, dict) else None
    wanted = reserve.get("grid_forming") if isinstance(reserve, dict) else None
    batteries = data.get("batteries")
    ids = [b.get("id") for b in batteries if isinstance(b, dict)] if isinstance(batteries, list | tuple) else []
    known = {i for i in ids if isinstance(i, str)}
    if isinstance(wanted, str) and wanted not in known:
        names = ", ".join(sorted(known)) or "none defined"
        return [("control.reserve.grid_forming", f"names no battery ({names}), got {wanted!r}")]
    return []


FuelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]


class Site(Frozen):
    """A whole site, as read from its YAML file."""

    site: SiteInfo
    control: Control = Control()
    batteries: tuple[Battery, ...] = ()
    generators: tuple[Generator, ...] = ()
    fuels: dict[FuelName, Fuel] = Field(default_factory=dict)
    pv: tuple[PVArray, ...] = ()
    loads: tuple[LoadTier, ...] = ()
    grid: Grid | None = None
    location: Location | None = None
    forecast: ForecastConfig = ForecastConfig()
    devices: tuple[DeviceBinding, ...] = ()
    """Modbus devices serving the assets (see :mod:`microgrid.site.devices`)."""
    centre: CentreLink | None = None
    """How ``run`` publishes to the city's Situation Centre (see :mod:`microgrid.site.centre`); None: it does not."""
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        """The folder paths in the site file are relative to: the site file's (the working directory for a
        site built in code)."""
        return self._base_dir

    def with_base_dir(self, folder: Path) -> Site:
        """This site with its relative paths (device maps, schedules, price files) resolved against ``folder``."""
        site = self.model_copy()
        site._base_dir = folder
        return site

    def resolve(self, relative: str) -> Path:
        """A path named in the site file, resolved against the site file's folder."""
        return self._base_dir / Path(relative).expanduser()

    @model_validator(mode="after")
    def _cross_checks(self) -> Site:
        problems = _cross_problems(self.model_dump())
        if problems:
            raise problem(*problems[0])  # site_from_dict lists them all
        return self

    # -- lookups ---------------------------------------------------------------------------

    def grid_forming_battery(self) -> Battery | None:
        """The battery that forms the grid while islanded: ``control.reserve.grid_forming``, else the
        largest by capacity (the first of equals); None without batteries."""
        reserve = self.control.reserve
        named = reserve.grid_forming if reserve is not None else None
        if named is not None:
            return next(b for b in self.batteries if b.id == named)
        return max(self.batteries, key=lambda b: b.capacity_kwh, default=None)

    def asset_ids(self) -> dict[str, str]:
        """Map every asset id to its kind (``battery``, ``generator``, ``pv``, ``load``)."""
        kinds = {"batteries": "battery", "generators": "generator", "pv": "pv", "loads": "load"}
        return {a.id: kind for section, kind in kinds.items() for a in getattr(self, section)}


# -- reading -------------------------------------------------------------------------------


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def describe_error(error: Any) -> str:
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "cross_check":
        where = f"{_key_path(loc)}.{ctx['key']}" if loc else ctx["key"]
        return f"{where}: {error['msg']}"
    if kind == "extra_forbidden":
        return f"{_key_path(loc)}: unknown key"
    if kind == "missing":
        return f"{_key_path(loc)}: required key is missing"
    if kind == "value_error":  # our own ValueErrors already show the value
        return f"{_key_path(loc)}: {ctx['error']}"
    shown = repr(error["input"])
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{_key_path(loc)}: {error['msg']}, got {shown}"


def site_from_dict(raw: Any, source: str = "<site>") -> Site:
    """Build a :class:`Site` from already-parsed YAML; raise :class:`ConfigError` listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"(top level): must be a mapping of sections, got {type(raw).__name__}"])
    try:
        return Site.model_validate(raw)
    except ValidationError as exc:
        # the site-level cross checks stop at the first problem and only run on valid fields:
        # list them all from the raw data instead
        problems = [describe_error(e) for e in exc.errors() if e["type"] != "cross_check" or e["loc"]]
    problems += [f"{key}: {message}" for key, message in _cross_problems(raw)]
    raise ConfigError(source, problems)


def read_site(path: str | Path) -> Site:
    """Read and validate a site YAML file.

    Parameters
    ----------
    path
        The site file (format: ``shared/spec/site-and-profiles.md``).

    Raises
    ------
    ConfigError
        Naming the file and, for each problem, the key path and the reason.
    """
    path = Path(path)
    return site_from_dict(load_yaml(path), str(path)).with_base_dir(path.resolve().parent)
