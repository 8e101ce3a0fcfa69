"""Physics of a simulated site: pure, stepped by ``advance(dt_s)``; no sockets, no clocks.

Sign conventions (as in the generic device profile): battery power is positive when
discharging; grid power is positive when importing. Powers in kW, energies in kWh, time in s.

What the plant does, per asset:

* **battery**: follows its setpoint within ``max_charge_kw`` / ``max_discharge_kw`` and stops
  at 0 % / 100 % (the BMS's hard limits: keeping to ``soc_min``/``soc_max`` is the
  controller's job); SOC integrates power with the charge/discharge efficiencies. Without a
  fresh setpoint for ``revert_timeout_s`` it reverts to autonomous mode (setpoint 0).
* **genset**: a start command runs the engine after ``start_delay_s``; it then follows its
  setpoint clamped to [min_kw, max_kw], ramping at ``ramp_kw_per_s``; it burns
  ``fuel_per_kwh`` · kWh + ``fuel_per_hour_running`` · h and stops when the tank is empty.
* **PV**: produces the profile's available power, capped by its curtailment limit.
* **loads**: each tier draws its profile's demand while its feeder relay is closed.
* **grid**: follows the outage pattern (``grid.available``), unless :meth:`SitePlant.force_grid`
  overrides it (an unplanned outage or return, for tests and drills); while up it is the slack.
  While down, the site's grid-forming battery (``Site.grid_forming_battery``: the one named in
  ``control.reserve``, else the largest) takes the slack within its limits, then the others;
  what no source can cover trips the least important tiers (under-frequency load shedding) and
  is counted as unserved; surplus curtails PV.

Plant-level faults (for tests and drills, each on and off again): :meth:`SitePlant.force_grid`
(grid loss / return off the profile), :meth:`SitePlant.trip_battery` (the inverter trips: no
power, limits 0, it reports a fault) and :meth:`SitePlant.fail_genset_start` (the engine cranks on
a run command but never runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from microgrid.profiles import Profiles
from microgrid.site import Battery, Generator, Site
from microgrid.state import SiteState

__all__ = ["BatteryPlant", "GensetPlant", "SitePlant"]


@dataclass
class BatteryPlant:
    """A battery inverter and its battery. ``setpoint_kw`` > 0 discharges."""

    spec: Battery
    energy_kwh: float
    setpoint_kw: float = 0.0
    power_kw: float = 0.0
    revert_timeout_s: float = 60.0
    since_command_s: float = 0.0
    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0
    tripped: bool = False
    """The inverter tripped (a fault): it delivers nothing, in either direction, until reset."""

    @property
    def soc(self) -> float:
        """State of charge (fraction)."""
        return self.energy_kwh / self.spec.capacity_kwh

    def command(self, setpoint_kw: float) -> None:
        """A setpoint write (also the keep-alive)."""
        self.setpoint_kw = setpoint_kw
        self.since_command_s = 0.0

    @property
    def autonomous(self) -> bool:
        """True once the setpoint has reverted for want of a keep-alive."""
        return self.since_command_s >= self.revert_timeout_s

    def limits_kw(self, dt_s: float) -> tuple[float, float]:
        """(most charge as a negative number, most discharge) possible over the next ``dt_s``; (0, 0) tripped."""
        if self.tripped:
            return 0.0, 0.0
        hours = dt_s / 3600
        room_kwh = self.spec.capacity_kwh - self.energy_kwh
        charge = min(self.spec.max_charge_kw, room_kwh / (self.spec.charge_efficiency * hours))
        discharge = min(self.spec.max_discharge_kw, self.energy_kwh * self.spec.discharge_efficiency / hours)
        return -max(0.0, charge), max(0.0, discharge)

    def wanted_kw(self, dt_s: float) -> float:
        """The power it will deliver on its own over ``dt_s`` (setpoint within limits)."""
        wanted = 0.0 if self.autonomous else self.setpoint_kw
        self.since_command_s += dt_s
        low, high = self.limits_kw(dt_s)
        return float(np.clip(wanted, low, high))

    def run(self, power_kw: float, dt_s: float) -> None:
        """Deliver ``power_kw`` (> 0 discharge) for ``dt_s`` and integrate the SOC."""
        hours = dt_s / 3600
        self.power_kw = power_kw
        self.discharged_kwh += max(power_kw, 0.0) * hours
        self.charged_kwh += max(-power_kw, 0.0) * hours
        if power_kw >= 0:
            self.energy_kwh -= power_kw * hours / self.spec.discharge_efficiency
        else:
            self.energy_kwh -= power_kw * hours * self.spec.charge_efficiency
        self.energy_kwh = min(max(self.energy_kwh, 0.0), self.spec.capacity_kwh)


@dataclass
class GensetPlant:
    """A genset and its controller."""

    spec: Generator
    start_delay_s: float = 30.0
    ramp_kw_per_s: float = 5.0
    run_requested: bool = False
    running: bool = False
    setpoint_kw: float = 0.0
    power_kw: float = 0.0
    starting_for_s: float = 0.0
    running_hours: float = 0.0
    fuel_burnt: float = 0.0
    starts: int = 0
    fails_to_start: bool = False
    """A start fault: on a run command the engine cranks (``starting``) but never runs; a running one runs on."""

    def command(self, run: bool, setpoint_kw: float | None = None) -> None:
        """Start/stop request and, optionally, a power setpoint [kW]."""
        self.run_requested = run
        if setpoint_kw is not None:
            self.setpoint_kw = setpoint_kw

    def advance(self, dt_s: float, fuel_left: float | None) -> float:
        """Move the engine on by ``dt_s``; return the fuel it burns (fuel units)."""
        if not self.run_requested or fuel_left == 0.0:
            self.running, self.starting_for_s, self.power_kw = False, 0.0, 0.0
            return 0.0
        if not self.running:
            self.starting_for_s += dt_s
            self.running = self.starting_for_s >= self.start_delay_s and not self.fails_to_start
            self.starts += int(self.running)
            return 0.0
        target = float(np.clip(self.setpoint_kw, self.spec.min_kw, self.spec.max_kw))
        step = self.ramp_kw_per_s * dt_s
        self.power_kw = float(np.clip(target, self.power_kw - step, self.power_kw + step))
        self.power_kw = max(self.power_kw, self.spec.min_kw)
        hours = dt_s / 3600
        burn = hours * (self.spec.fuel_per_kwh * self.power_kw + self.spec.fuel_per_hour_running)
        if fuel_left is not None and burn > fuel_left:
            self.running, self.power_kw = False, 0.0
            burn = fuel_left
        self.running_hours += hours
        self.fuel_burnt += burn
        return burn


@dataclass
class Totals:
    """Running totals since the start of the simulation."""

    unserved_kwh: dict[str, float] = field(default_factory=dict)
    """Demand tripped by the plant (under-frequency shedding) per tier [kWh]."""
    disconnected_kwh: dict[str, float] = field(default_factory=dict)
    """Demand of tiers whose feeder the controller opened, per tier [kWh]."""
    imported_kwh: float = 0.0
    exported_kwh: float = 0.0
    pv_kwh: float = 0.0


class SitePlant:
    """A whole simulated site, driven by ``profiles`` (loads, PV, outages) from ``start``."""

    def __init__(
        self, site: Site, profiles: Profiles, state: SiteState | None = None, *, start: pd.Timestamp | None = None
    ) -> None:
        state = state or SiteState.initial(site)
        self.site, self.profiles = site, profiles
        self.clock = profiles.index[0] if start is None else pd.Timestamp(start)
        """Simulated UTC now; ``start`` may be any time (the profiles repeat, by row, from their first step)."""
        # Plain arrays: the plant reads them every substep (pandas' .iloc costs ~10 µs a read).
        self._load_kw = {t: profiles.load_kw[t].to_numpy(dtype=float) for t in profiles.load_kw.columns}
        self._pv_kw = {k: profiles.pv_kw[k].to_numpy(dtype=float) for k in profiles.pv_kw.columns}
        self._grid_available = profiles.grid_available.to_numpy(dtype=float)
        self.batteries = {b.id: BatteryPlant(b, state.soc[b.id] * b.capacity_kwh) for b in site.batteries}
        forming = site.grid_forming_battery()
        self._slack_order = sorted(
            self.batteries, key=lambda b: (b != (forming.id if forming else None), -self.batteries[b].spec.capacity_kwh)
        )
        """The grid-forming battery first (it takes the slack), then the others, largest first, if it cannot."""
        self.gensets = {g.id: GensetPlant(g) for g in site.generators}
        for g_id, g_state in state.generators.items():
            gen = self.gensets[g_id]
            gen.run_requested = gen.running = g_state.on
            gen.power_kw = gen.spec.min_kw if g_state.on else 0.0
            gen.setpoint_kw = gen.power_kw
        self.fuel: dict[str, float | None] = dict(state.fuel_stock)
        self.initial_fuel: dict[str, float | None] = dict(state.fuel_stock)
        self.pv_limit_kw = {a.id: a.peak_kw for a in site.pv}
        self.relay_closed = {t.id: True for t in site.loads}
        self.grid_forced: bool | None = None
        self.pv_kw = {a.id: 0.0 for a in site.pv}
        self.pv_available_kw = {a.id: 0.0 for a in site.pv}
        self.pv_energy_kwh = {a.id: 0.0 for a in site.pv}
        self.load_kw = {t.id: 0.0 for t in site.loads}
        self.grid_kw = 0.0
        self.totals = Totals(
            unserved_kwh={t.id: 0.0 for t in site.loads}, disconnected_kwh={t.id: 0.0 for t in site.loads}
        )

    # -- inputs from the profiles ----------------------------------------------------------

    def _row(self) -> int:
        """The profile row for the clock; past the last row the profiles repeat from the first."""
        return self.profiles.row_at(self.clock)

    @property
    def grid_up(self) -> bool:
        """Grid availability now (the profile's outage pattern, unless a test forced it)."""
        if self.site.grid is None:
            return False
        if self.grid_forced is not None:
            return self.grid_forced
        return bool(self._grid_available[self._row()] >= 0.5)

    def demand_kw(self) -> dict[str, float]:
        """Each tier's demand now by the profiles [kW] (what it draws with its relay closed and nothing shed)."""
        row = self._row()
        return {t: float(kw[row]) for t, kw in self._load_kw.items()}

    # -- operations on the plant ---------------------------------------------------------------

    def deliver_fuel(self, units: Mapping[str, float]) -> None:
        """A truck pours ``units`` of each named fuel into the tank now [fuel units]. The level sender's
        100 % follows the fullest the tank has been (its level at the start, or after a delivery).

        Raises
        ------
        ValueError
            :meth:`check_delivery`'s: nothing is poured then.
        """
        self.check_delivery(units)
        for name, amount in units.items():
            level = (self.fuel[name] or 0.0) + amount
            self.fuel[name] = level
            self.initial_fuel[name] = max(self.initial_fuel.get(name) or 0.0, level)

    def check_delivery(self, units: Mapping[str, float]) -> None:
        """Raise ValueError naming the fuel when ``units`` names a fuel the site does not have, one with no
        stock kept (unlimited), or an amount that is negative or not finite."""
        for name, amount in units.items():
            if name not in self.fuel:
                raise ValueError(f"fuel delivery: the site has no fuel {name!r} (it has {sorted(self.fuel)})")
            if self.fuel[name] is None:
                raise ValueError(f"fuel delivery: {name!r} has no stock kept (unlimited), nothing to fill")
            if not math.isfinite(amount) or amount < 0:
                raise ValueError(f"fuel delivery: {name!r} needs a finite amount >= 0, got {amount!r}")

    # -- plant-level faults ----------------------------------------------------------------

    def force_grid(self, up: bool | None) -> None:
        """Hold the grid up (True) or down (False) whatever the profiles say; None follows them again."""
        self.grid_forced = up

    def trip_battery(self, battery_id: str, tripped: bool = True) -> None:
        """Trip (or, with ``tripped=False``, reset) the inverter of ``battery_id``: no power while tripped."""
        self.batteries[battery_id].tripped = tripped

    def fail_genset_start(self, genset_id: str, failing: bool = True) -> None:
        """Make ``genset_id`` fail every start from now (or, ``failing=False``, start normally again)."""
        self.gensets[genset_id].fails_to_start = failing

    # -- stepping --------------------------------------------------------------------------

    def advance(self, dt_s: float) -> None:
        """Move the whole site on by ``dt_s`` seconds."""
        row, hours = self._row(), dt_s / 3600
        for g in self.gensets.values():
            burn = g.advance(dt_s, self.fuel.get(g.spec.fuel))
            if self.fuel.get(g.spec.fuel) is not None:
                self.fuel[g.spec.fuel] = max(0.0, (self.fuel[g.spec.fuel] or 0.0) - burn)
        wanted = {t: float(self._load_kw[t][row]) for t in self.relay_closed}
        demand = {t: kw if self.relay_closed[t] else 0.0 for t, kw in wanted.items()}
        for t, closed in self.relay_closed.items():
            if not closed:
                self.totals.disconnected_kwh[t] = self.totals.disconnected_kwh.get(t, 0.0) + wanted[t] * hours
        pv_now = {k: float(self._pv_kw[k][row]) for k in self.pv_limit_kw}
        available_pv = {k: min(pv_now[k], lim) for k, lim in self.pv_limit_kw.items()}
        battery_kw = {b: bat.wanted_kw(dt_s) for b, bat in self.batteries.items()}
        gen_kw = sum(g.power_kw for g in self.gensets.values())
        net = sum(demand.values()) - sum(available_pv.values()) - gen_kw - sum(battery_kw.values())
        grid_kw, curtail = self._settle(net, battery_kw, demand, dt_s)
        for b, bat in self.batteries.items():
            bat.run(battery_kw[b], dt_s)
        self.pv_kw = _curtail(available_pv, curtail)
        self.pv_available_kw = pv_now
        for k, kw in self.pv_kw.items():
            self.pv_energy_kwh[k] += kw * hours
        self.load_kw, self.grid_kw = demand, grid_kw
        self.totals.imported_kwh += max(grid_kw, 0.0) * hours
        self.totals.exported_kwh += max(-grid_kw, 0.0) * hours
        self.totals.pv_kwh += sum(self.pv_kw.values()) * hours
        self.clock = self.clock + pd.Timedelta(seconds=dt_s)

    def _settle(
        self, net_kw: float, battery_kw: dict[str, float], demand: dict[str, float], dt_s: float
    ) -> tuple[float, float]:
        """Cover ``net_kw`` (> 0 deficit): grid, then grid-forming battery, then load shedding.

        Returns (grid import kW, PV to curtail kW); updates ``battery_kw`` and ``demand``.
        """
        grid = self.site.grid
        if self.grid_up and grid is not None:
            grid_kw = float(np.clip(net_kw, -grid.max_export_kw, grid.max_import_kw))
            net_kw -= grid_kw
        else:
            grid_kw = 0.0
        for b in self._slack_order:
            low, high = self.batteries[b].limits_kw(dt_s)
            extra = float(np.clip(net_kw, low - battery_kw[b], high - battery_kw[b]))
            battery_kw[b] += extra
            net_kw -= extra
        if net_kw > 1e-9:
            self._shed(net_kw, demand, dt_s)
            return grid_kw, 0.0
        return grid_kw, max(0.0, -net_kw)

    def _shed(self, deficit_kw: float, demand: dict[str, float], dt_s: float) -> None:
        for tier in sorted(self.site.loads, key=lambda t: -t.priority):
            cut = min(deficit_kw, demand[tier.id])
            demand[tier.id] -= cut
            self.totals.unserved_kwh[tier.id] += cut * dt_s / 3600
            deficit_kw -= cut


def _curtail(available: dict[str, float], curtail_kw: float) -> dict[str, float]:
    out = {}
    for k, kw in available.items():
        cut = min(kw, curtail_kw)
        out[k] = kw - cut
        curtail_kw -= cut
    return out
