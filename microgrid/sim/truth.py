"""The plant's truth and the controller's writes held against it (for tests and drills).

:func:`truth` takes a :class:`TruthRow` of a :class:`~microgrid.sim.physics.SitePlant`: what is
really there (true SOCs, gensets, fuel, grid, each tier's demand and what it got), whatever the
registers say. :class:`~microgrid.sim.server.SimulatedSite` logs every write a device accepted as
a :class:`WriteRecord` (``SimulatedSite.writes``); :func:`unsafe_write` says why a write is unsafe
given the truth at the moment it arrived, or None.

A write is **unsafe** when it asks for something the site's limits forbid or the plant's true
state makes harmful:

* a battery setpoint beyond the site's ``max_charge_kw`` / ``max_discharge_kw``;
* a discharge (> :data:`KW_TOLERANCE`) while the true SOC is at or below ``soc_min``, or a charge
  at or above ``soc_max`` (both by more than :data:`SOC_TOLERANCE`: a keep-alive lands up to 30 s
  after the SOC the controller saw);
* a charge of a battery that does not form the grid while the grid is truly down, larger by more
  than :data:`DEAD_GRID_MARGIN_KW` than what PV and the gensets running or starting (and able to
  start) can supply beyond the connected demand: a charge "from a dead grid" only drains the
  grid-forming battery. The grid-forming battery
  itself (``Site.grid_forming_battery``) is exempt: islanded it carries the balance whatever its
  setpoint;
* a genset power setpoint below 0 or above its ``max_kw``; a PV limit outside 0-100 %;
* the feeder relay of the most important tier (the lowest ``priority``) commanded open.

Sign conventions as in the generic device profile: battery power > 0 discharges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from microgrid.point_names import POWER_LIMIT_PCT, POWER_SETPOINT_KW, feeder_command_number
from microgrid.sim.physics import SitePlant
from microgrid.site import Site

__all__ = ["DEAD_GRID_MARGIN_KW", "KW_TOLERANCE", "SOC_TOLERANCE", "TruthRow", "WriteRecord", "truth", "unsafe_write"]

KW_TOLERANCE = 0.5
"""Powers within this of a limit (or of zero) are not unsafe [kW]: rounding of the register maps."""

DEAD_GRID_MARGIN_KW = 10.0
"""How much of an islanded charge may come from the grid-forming battery before it is unsafe [kW]: a plan
made on forecast demand leaves it the forecast error for the interval (a few kW) to absorb."""

SOC_TOLERANCE = 0.002
"""A battery this far past its band (fraction of capacity) before a write in the wrong direction is unsafe."""


@dataclass(frozen=True)
class WriteRecord:
    """One write a simulated device accepted, in its map's units.

    Attributes
    ----------
    time
        The plant's clock when it arrived (UTC).
    device
        Device id (the site's ``devices`` section).
    device_class
        The map's device class (``battery_inverter``, ``genset_controller``, ``pv_inverter``,
        ``grid_meter``, ``load_feeder``).
    point
        The point written.
    value
        The value written (map units: kW, %, 0/1 …).
    asset
        The asset the point drives: the device's asset, or for a feeder command the tier.
    applied
        False when the device ignored it (``Fault(ignore_writes=True)``).
    """

    time: datetime
    device: str
    device_class: str
    point: str
    value: float
    asset: str | None = None
    applied: bool = True


@dataclass(frozen=True)
class TruthRow:
    """The plant's true state at ``time`` (powers [kW], energies [kWh], SOC as a fraction)."""

    time: datetime
    soc: dict[str, float]
    battery_kw: dict[str, float]
    tripped: dict[str, bool]
    genset_running: dict[str, bool]
    genset_starting: dict[str, bool]
    """Commanded to run, cranking, and able to start (not under ``fail_genset_start``)."""
    genset_kw: dict[str, float]
    fuel: dict[str, float | None]
    grid_up: bool
    grid_kw: float
    pv_available_kw: float
    """What the PV arrays could deliver without curtailment (all arrays)."""
    demand_kw: dict[str, float]
    """Each tier's demand by the profiles (relay closed or not)."""
    served_kw: dict[str, float]
    """What each tier got over the last substep (0 with its relay open or shed)."""
    relay_closed: dict[str, bool]
    unserved_kwh: dict[str, float] = field(default_factory=dict)
    """Cumulative demand the plant tripped (no source could carry it), per tier."""
    disconnected_kwh: dict[str, float] = field(default_factory=dict)
    """Cumulative demand behind relays the controller opened, per tier."""

    def as_dict(self) -> dict[str, object]:
        """Flat columns (``soc.bess1``, ``grid_up`` …) for a frame or a CSV."""
        flat: dict[str, object] = {"time": self.time, "grid_up": self.grid_up, "grid_kw": self.grid_kw}
        flat["pv_available_kw"] = self.pv_available_kw
        for name in ("soc", "battery_kw", "tripped", "genset_running", "genset_starting", "genset_kw", "fuel"):
            flat |= {f"{name}.{k}": v for k, v in getattr(self, name).items()}
        flat |= {f"demand_kw.{k}": v for k, v in self.demand_kw.items()}
        flat |= {f"served_kw.{k}": v for k, v in self.served_kw.items()}
        flat |= {f"relay_closed.{k}": v for k, v in self.relay_closed.items()}
        flat |= {f"unserved_kwh.{k}": v for k, v in self.unserved_kwh.items()}
        return flat | {f"disconnected_kwh.{k}": v for k, v in self.disconnected_kwh.items()}


def truth(plant: SitePlant) -> TruthRow:
    """The plant's state now, from its own variables (never from a register)."""
    bats, gens = plant.batteries, plant.gensets
    return TruthRow(
        time=plant.clock.to_pydatetime(),
        soc={b: bat.soc for b, bat in bats.items()},
        battery_kw={b: bat.power_kw for b, bat in bats.items()},
        tripped={b: bat.tripped for b, bat in bats.items()},
        genset_running={g: gen.running for g, gen in gens.items()},
        genset_starting={
            g: gen.run_requested and not gen.running and not gen.fails_to_start for g, gen in gens.items()
        },
        genset_kw={g: gen.power_kw for g, gen in gens.items()},
        fuel=dict(plant.fuel),
        grid_up=plant.grid_up,
        grid_kw=plant.grid_kw,
        pv_available_kw=sum(plant.pv_available_kw.values()),
        demand_kw=plant.demand_kw(),
        served_kw=dict(plant.load_kw),
        relay_closed=dict(plant.relay_closed),
        unserved_kwh=dict(plant.totals.unserved_kwh),
        disconnected_kwh=dict(plant.totals.disconnected_kwh),
    )


def unsafe_write(site: Site, write: WriteRecord, row: TruthRow) -> str | None:
    """Why ``write`` is unsafe given the plant's truth ``row`` when it arrived (module docstring), or None."""
    if write.device_class == "battery_inverter" and write.point == POWER_SETPOINT_KW:
        return _battery(site, write, row)
    if write.device_class == "genset_controller" and write.point == POWER_SETPOINT_KW:
        gen = next(g for g in site.generators if g.id == write.asset)
        if write.value < -KW_TOLERANCE or write.value > gen.max_kw + KW_TOLERANCE:
            return f"{write.asset}: {write.value:g} kW outside [0, {gen.max_kw:g}]"
    if write.device_class == "pv_inverter" and write.point == POWER_LIMIT_PCT and not 0 <= write.value <= 100:
        return f"{write.asset}: PV limit {write.value:g} % outside [0, 100]"
    if write.device_class == "load_feeder" and feeder_command_number(write.point) is not None and write.value == 0:
        first = min(site.loads, key=lambda t: t.priority)
        if write.asset == first.id:
            return f"the relay of {first.id}, the most important tier, commanded open"
    return None


def _battery(site: Site, write: WriteRecord, row: TruthRow) -> str | None:
    bat = next(b for b in site.batteries if b.id == write.asset)
    kw, soc = write.value, row.soc[bat.id]
    if kw > bat.max_discharge_kw + KW_TOLERANCE or -kw > bat.max_charge_kw + KW_TOLERANCE:
        return f"{bat.id}: {kw:g} kW beyond its limits (-{bat.max_charge_kw:g}, +{bat.max_discharge_kw:g})"
    if kw > KW_TOLERANCE and soc <= bat.soc_min - SOC_TOLERANCE:
        return f"{bat.id}: discharge {kw:g} kW at a true SOC of {soc:.3f} (soc_min {bat.soc_min:g})"
    if kw < -KW_TOLERANCE and soc >= bat.soc_max + SOC_TOLERANCE:
        return f"{bat.id}: charge {-kw:g} kW at a true SOC of {soc:.3f} (soc_max {bat.soc_max:g})"
    forming = site.grid_forming_battery()
    if kw < -KW_TOLERANCE and not row.grid_up and site.grid is not None and bat.id != (forming and forming.id):
        able = {g for g, on in row.genset_running.items() if on} | {g for g, on in row.genset_starting.items() if on}
        gensets = sum(g.max_kw for g in site.generators if g.id in able)
        demand = sum(kw_t for t, kw_t in row.demand_kw.items() if row.relay_closed.get(t, True))
        surplus = max(0.0, row.pv_available_kw + gensets - demand)
        if -kw > surplus + DEAD_GRID_MARGIN_KW:
            return f"{bat.id}: charge {-kw:g} kW from a dead grid (PV and gensets spare {surplus:.1f} kW)"
    return None
