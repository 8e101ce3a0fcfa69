"""A light plant model for the demo's simulated islands: one energy balance per step, no optimisation.

``microgrid centre demo`` runs 20+ islands in one process on a 2-core machine, so an island here is not
the real controller (a MILP solve per cycle and island would not keep up): each step is a rule, stated
here and in docs/situation-centre.md. Units: kW, kWh, h, litres of diesel; SOC as a fraction 0-1;
battery power positive = discharge.

* **Demand** per tier: the template's mean × a daily shape (0.75 at 03:00 UTC … 1.25 at 15:00 UTC).
  **PV**: ``pv_kwp`` × 0.5 × sin over 06:00-14:00 UTC (a cloudy December day in Kharkiv).
* **Grid up**: the grid carries everything; the battery charges (its power, up to ``soc_max``);
  gensets stop.
* **Grid down**: comfort is shed at once in emergency mode. The gensets start together when the SOC
  falls to 35 % (60 % in emergency mode, to keep the battery for the critical tier) and stop at
  85 %; running, they carry the load and charge the battery between their ``min_kw`` and ``max_kw``.
  The battery covers the rest within its power and down to ``soc_min``. When that is not enough
  comfort is shed, then essential; when even critical alone cannot be carried, nothing is (``none``).
  A genset with no fuel stops (a fault); an island marked ``fails_to_start`` has its first genset
  fail on its first start (a fault that stays: an alarm on the screen).
* **Autonomy** (``critical_h``): hours the tier(s) can be carried from now, on the battery above
  ``soc_min`` and the diesel in the tank burnt at that load, PV ignored (a conservative, closed-form
  figure, not :mod:`microgrid.autonomy`'s stepped one).

:meth:`Plant.facts` hands each step to the real payload builders as a
:class:`~microgrid.uplink.payloads.CycleFacts` whose summary has the keys the controller's recorded
summary has (:func:`microgrid.control.recording.summary`); its ``source`` is ``plan`` (the rule stands
in for the plan) and its ``plan.status`` is ``simulated``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from microgrid.centre.demo_city import IslandSpec
from microgrid.control.emergency import Emergency
from microgrid.site import Site, site_from_dict
from microgrid.uplink import CycleFacts

__all__ = ["Flows", "Plant", "demand_kw", "pv_kw", "site_of"]

ETA = 0.95
"""Battery charge and discharge efficiency."""
START_SOC, START_SOC_EMERGENCY, STOP_SOC = 0.35, 0.60, 0.85
SHED_ORDER = ("comfort", "essential")
AUTONOMY_CAP_H = 10000.0


def demand_kw(spec: IslandSpec, hour_utc: float) -> dict[str, float]:
    """Each tier's demand [kW] at ``hour_utc`` (module docstring)."""
    shape = 1.0 - 0.25 * math.cos(2 * math.pi * (hour_utc - 3.0) / 24.0)
    return {tier: kw * shape for tier, kw in spec.loads_kw.items()}


def pv_kw(spec: IslandSpec, hour_utc: float) -> float:
    """PV output [kW] at ``hour_utc`` (module docstring)."""
    h = hour_utc % 24
    return spec.pv_kwp * 0.5 * math.sin(math.pi * (h - 6.0) / 8.0) if 6.0 < h < 14.0 else 0.0


def site_of(spec: IslandSpec) -> Site:
    """The island as a :class:`~microgrid.site.Site` (name, battery, gensets, fuel, tiers) for the payload builders."""
    raw = {
        "site": {"name": spec.label},
        "location": {"latitude": spec.latitude, "longitude": spec.longitude},
        "batteries": [{"id": "bess", "capacity_kwh": spec.capacity_kwh, "soc_min": spec.soc_min,
                       "soc_max": spec.soc_max, "max_charge_kw": spec.power_kw, "max_discharge_kw": spec.power_kw,
                       "charge_efficiency": ETA, "discharge_efficiency": ETA, "initial_soc": spec.initial_soc}],
        "generators": [{"id": g.id, "fuel": "diesel", "max_kw": g.max_kw, "min_kw": g.min_kw,
                        "fuel_per_kwh": g.fuel_per_kwh, "fuel_per_hour_running": g.fuel_per_hour_running}
                       for g in spec.gensets],
        "fuels": {"diesel": {"unit": "l", "price_per_unit": 60, "stock": spec.stock_l}},
        "loads": [{"id": tier, "priority": p, "value_of_lost_load_per_kwh": v}
                  for tier, p, v in (("critical", 1, 1000), ("essential", 2, 100), ("comfort", 3, 10))],
    }  # fmt: skip
    return site_from_dict(raw, f"demo island {spec.island}")


@dataclass(frozen=True)
class Flows:
    """One step's flows [kW]: tiers served, battery (+ discharge), each genset, PV used, grid import."""

    served: tuple[str, ...]
    battery_kw: float
    genset_kw: dict[str, float]
    pv_kw: float
    grid_kw: float


@dataclass
class Plant:
    """One simulated island's state and its step rule (module docstring)."""

    spec: IslandSpec
    fails_to_start: bool = False
    soc: float = field(init=False)
    fuel_l: float = field(init=False)
    running: bool = False
    hours_in_state: float = 0.0
    faults: dict[str, str] = field(default_factory=dict)
    mode: Emergency = field(default_factory=Emergency)
    """Emergency mode: the controller's own state machine, commanded like ``microgrid override --emergency``."""
    last: Flows | None = None

    def __post_init__(self) -> None:
        self.soc, self.fuel_l = self.spec.initial_soc, self.spec.stock_l

    @property
    def emergency(self) -> bool:
        return self.mode.active

    # -- one step ---------------------------------------------------------------------------------

    def _charge_room_kw(self, dt_h: float) -> float:
        room_kwh = max(self.spec.soc_max - self.soc, 0.0) * self.spec.capacity_kwh
        return min(self.spec.power_kw, room_kwh / (ETA * dt_h))

    def _discharge_room_kw(self, dt_h: float) -> float:
        above_kwh = max(self.soc - self.spec.soc_min, 0.0) * self.spec.capacity_kwh
        return min(self.spec.power_kw, above_kwh * ETA / dt_h)

    def _switch_gensets(self) -> None:
        """Start at the start SOC, stop at the stop SOC or with an empty tank; the seeded start failure."""
        working = [g for g in self.spec.gensets if g.id not in self.faults]
        if self.running and (self.soc >= STOP_SOC or self.fuel_l <= 0.0 or not working):
            self.running, self.hours_in_state = False, 0.0
        elif not self.running and self.soc <= (START_SOC_EMERGENCY if self.emergency else START_SOC):
            if self.fuel_l <= 0.0:
                self.faults.update({g.id: "no fuel: the tank is dry" for g in working})
                return
            if self.fails_to_start and self.spec.gensets[0].id not in self.faults:
                self.faults[self.spec.gensets[0].id] = "failed to start"
                working = working[1:]
            if working:
                self.running, self.hours_in_state = True, 0.0

    def _balance(self, demand: dict[str, float], pv: float, dt_h: float) -> Flows:
        """Grid down: the most tiers that the gensets and the battery can carry (module docstring)."""
        working = [g for g in self.spec.gensets if g.id not in self.faults] if self.running else []
        always = SHED_ORDER[:1] if self.emergency else ()
        charge, discharge = self._charge_room_kw(dt_h), self._discharge_room_kw(dt_h)
        for shed in ((), SHED_ORDER[:1], SHED_ORDER):
            served = tuple(t for t in demand if t not in shed and t not in always)
            net = sum(demand[t] for t in served) - pv
            low, high = sum(g.min_kw for g in working), sum(g.max_kw for g in working)
            gen = min(max(net + charge, low), high) if working else 0.0
            battery = net - gen
            if battery <= discharge + 1e-9:
                used = max(
                    pv + min(battery + charge, 0.0), 0.0
                )  # PV curtailed when the battery cannot take the surplus
                battery = max(battery, -charge)
                share = {g.id: gen * g.max_kw / high if high else 0.0 for g in working}
                return Flows(served, battery, share, used, 0.0)
        return Flows((), 0.0, {}, 0.0, 0.0)  # not even the critical tier: the island is dark

    def step(self, hour_utc: float, grid_up: bool, dt_h: float) -> Flows:
        """Advance ``dt_h`` hours from ``hour_utc`` with the grid ``grid_up``; the step's flows."""
        demand, pv = demand_kw(self.spec, hour_utc), pv_kw(self.spec, hour_utc)
        if grid_up:
            if self.running:
                self.running, self.hours_in_state = False, 0.0
            charge = self._charge_room_kw(dt_h)
            flows = Flows(tuple(demand), -charge, {}, pv, sum(demand.values()) - pv + charge)
        else:
            self._switch_gensets()
            flows = self._balance(demand, pv, dt_h)
        stored = -flows.battery_kw * ETA if flows.battery_kw < 0 else -flows.battery_kw / ETA
        self.soc = min(max(self.soc + stored * dt_h / self.spec.capacity_kwh, 0.0), 1.0)
        burn = sum(g.fuel_per_kwh * flows.genset_kw.get(g.id, 0.0) + g.fuel_per_hour_running
                   for g in self.spec.gensets if g.id in flows.genset_kw)  # fmt: skip
        self.fuel_l = max(self.fuel_l - burn * dt_h, 0.0)
        self.hours_in_state += dt_h
        self.last = flows
        return flows

    # -- what the island publishes ----------------------------------------------------------------

    def autonomy_h(self, tiers: tuple[str, ...], hour_utc: float) -> float:
        """Hours ``tiers`` can be carried on the battery and the tank from now (module docstring)."""
        load = sum(demand_kw(self.spec, hour_utc)[t] for t in tiers)
        battery_kwh = max(self.soc - self.spec.soc_min, 0.0) * self.spec.capacity_kwh * ETA
        usable = [g for g in self.spec.gensets if g.id not in self.faults or "dry" in self.faults[g.id]]
        per_kwh = min((g.fuel_per_kwh + g.fuel_per_hour_running / max(load, g.min_kw, 1e-9) for g in usable),
                      default=math.inf)  # fmt: skip
        hours = (battery_kwh + (self.fuel_l / per_kwh if usable else 0.0)) / load if load > 0 else AUTONOMY_CAP_H
        return round(min(hours, AUTONOMY_CAP_H), 2)

    def summary(self, start: datetime, grid_up: bool) -> dict[str, Any]:
        """The step as the controller's recorded summary has it (the keys the payload builders read)."""
        hour = start.hour + start.minute / 60
        served = self.last.served if self.last else ()
        shed = [t for t in self.spec.loads_kw if t not in served]
        running, gensets = (self.last.genset_kw if self.last else {}), self.spec.gensets
        return {
            "source": "plan",
            "reason": f"simulated island (demo); shed: {', '.join(shed)}" if shed else "simulated island (demo)",
            "health": {g: "fault" for g in self.faults},
            "faults": dict(self.faults),
            "state": {
                "grid_up": grid_up,
                "soc": {"bess": self.soc},
                "generators": {g.id: {"on": g.id in running, "hours_in_state": self.hours_in_state} for g in gensets},
                "fuel_stock": {"diesel": self.fuel_l},
            },
            "autonomy": {
                "critical_h": self.autonomy_h(("critical",), hour),
                "critical_essential_h": self.autonomy_h(("critical", "essential"), hour),
            },
            "emergency": {
                "active": self.mode.active,
                "since": self.mode.since.strftime("%Y-%m-%dT%H:%M:%SZ") if self.mode.since else None,
                "reason": self.mode.reason,
            },
            "plan": {"status": "simulated", "solve_seconds": None},
        }

    def facts(self, start: datetime, grid_up: bool) -> CycleFacts:
        """The last step as the payload builders take it (status, alarms, cycle)."""
        flows = self.last or Flows((), 0.0, {}, 0.0, 0.0)
        return CycleFacts(
            start=start,
            mode="auto",
            summary=self.summary(start, grid_up),
            battery_kw=flows.battery_kw,
            generator_kw={g.id: flows.genset_kw.get(g.id, 0.0) for g in self.spec.gensets},
            pv_kw=flows.pv_kw,
        )
