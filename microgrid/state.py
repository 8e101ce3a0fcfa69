"""SiteState: what the site is doing now (SOC, generator status, fuel stock).

The JSON contract is in ``shared/spec/site-and-profiles.md``; anything not given
falls back to the site file's ``initial_*`` values and fuel stock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from microgrid.errors import StateError
from microgrid.site import Battery, Site, describe_error

__all__ = ["GeneratorState", "SiteState", "read_state", "state_from_dict"]


@dataclass(frozen=True)
class GeneratorState:
    """A genset's status: running or not, and for how long it has been so [h]."""

    on: bool
    hours_in_state: float


@dataclass(frozen=True)
class SiteState:
    """The state a plan starts from.

    Attributes
    ----------
    soc
        Battery id → state of charge (fraction of capacity, may lie outside the SOC band).
    generators
        Generator id → :class:`GeneratorState`.
    fuel_stock
        Fuel name → stock available now (fuel units); ``None`` = unlimited.
    """

    soc: dict[str, float] = field(default_factory=dict)
    generators: dict[str, GeneratorState] = field(default_factory=dict)
    fuel_stock: dict[str, float | None] = field(default_factory=dict)

    def soc_of(self, battery: Battery) -> float:
        """The battery's SOC now [fraction]: the state's, else the site file's ``initial_soc`` (the spec's rule)."""
        return self.soc.get(battery.id, battery.initial_soc)

    def energy_band_kwh(self, battery: Battery) -> tuple[float, float]:
        """The energy band [kWh] the battery must stay in over a plan from this state: the spec's
        ``[min(soc_min, soc0), max(soc_max, soc0)] · E``, widened to include the SOC now, so that a battery
        found outside its band (a deep outage, a BMS recalibration) is not an infeasible plan."""
        soc0, cap = self.soc_of(battery), battery.capacity_kwh
        return min(battery.soc_min, soc0) * cap, max(battery.soc_max, soc0) * cap

    @classmethod
    def initial(cls, site: Site) -> SiteState:
        """The state the site file describes (``initial_*`` keys and fuel stocks)."""
        return cls(
            soc={b.id: b.initial_soc for b in site.batteries},
            generators={g.id: GeneratorState(g.initial_on, g.initial_hours_in_state) for g in site.generators},
            fuel_stock={name: f.stock for name, f in site.fuels.items()},
        )


_Num = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Battery(_Frozen):
    soc: Annotated[float, Field(ge=0, le=1, strict=True, allow_inf_nan=False)]


class _Generator(_Frozen):
    on: Annotated[bool, Field(strict=True)]
    hours_in_state: _Num


class _Fuel(_Frozen):
    stock: _Num


class _StateFile(_Frozen):
    batteries: dict[str, _Battery] = {}
    generators: dict[str, _Generator] = {}
    fuels: dict[str, _Fuel] = {}


def state_from_dict(raw: Any, site: Site, source: str = "<state>") -> SiteState:
    """Validate parsed state JSON against ``site`` and merge it over the site's initial state."""
    if not isinstance(raw, dict):
        raise StateError(source, [f"(top level): must be a JSON object, got {type(raw).__name__}"])
    try:
        parsed = _StateFile.model_validate(raw)
    except ValidationError as exc:
        raise StateError(source, [describe_error(e) for e in exc.errors()]) from None
    known = {
        "batteries": {b.id for b in site.batteries},
        "generators": {g.id for g in site.generators},
        "fuels": set(site.fuels),
    }
    problems = [
        f"{section}.{key}: names no {section[:-1] if section != 'batteries' else 'battery'} of the site"
        f" ({', '.join(sorted(ids)) or 'none'})"
        for section, ids in known.items()
        for key in getattr(parsed, section)
        if key not in ids
    ]
    if problems:
        raise StateError(source, problems)
    base = SiteState.initial(site)
    return SiteState(
        soc=base.soc | {k: v.soc for k, v in parsed.batteries.items()},
        generators=base.generators | {k: GeneratorState(v.on, v.hours_in_state) for k, v in parsed.generators.items()},
        fuel_stock=base.fuel_stock | {k: v.stock for k, v in parsed.fuels.items()},
    )


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of :func:`json.loads` that refuses a key given twice (as the site YAML does)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} given twice in one object")
        seen.add(key)
    return dict(pairs)


def read_state(path: str | Path, site: Site) -> SiteState:
    """Read a state JSON file for ``site``.

    Raises
    ------
    StateError
        Naming the file and, for each problem, the key path and the reason.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_refuse_duplicates)
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(str(path), [f"cannot read file: {exc}"]) from exc
    except json.JSONDecodeError as exc:
        raise StateError(str(path), [f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"]) from exc
    except (ValueError, RecursionError) as exc:  # a key given twice, an int of 5000 digits, deep nesting
        raise StateError(str(path), [f"not valid JSON: {exc}"]) from exc
    return state_from_dict(raw, site, str(path))
