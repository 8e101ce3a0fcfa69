"""DispatchInputs: everything one solve needs, as plain numbers (no pyomo here)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from microgrid.profiles import Profiles
from microgrid.site import Battery, Site
from microgrid.state import SiteState

_CEIL_TOL = 1e-9


def ceil_steps(hours: float, step_h: float) -> int:
    """``ceil(hours / step_h)``, tolerant of float noise (0.9 h / 0.1 h is 9 steps, not 10)."""
    return max(0, math.ceil(hours / step_h - _CEIL_TOL))


RESERVE_NOW_SHARE = 0.6
"""Default π₀ as a share of the most important tier's value of lost load (``ReserveInputs.of``)."""
RESERVE_LATER_SHARE = 0.3
"""Default π over a whole horizon as a share of that value (``ReserveInputs.of``)."""
RESERVE_EARLY_CHARGE_SHARE = 1e-4
"""Default ε, the early-charge tie-breaker, as a share of that value (``ReserveInputs.of``)."""


def check_fuel_delivered(site: Site, units: Mapping[str, float | None]) -> None:
    """Raise ValueError naming the fuel when a delivery's ``units`` name a fuel ``site`` does not have, or an
    amount that is not a finite number ≥ 0 (None, "filled back", passes)."""
    for fuel, amount in units.items():
        if fuel not in site.fuels:
            raise ValueError(f"fuel_delivered names no fuel of the site: {fuel!r}")
        if amount is not None and not (math.isfinite(amount) and amount >= 0):
            raise ValueError(f"fuel_delivered[{fuel!r}] must be a finite amount ≥ 0, got {amount}")


@dataclass(frozen=True)
class ReserveInputs:
    """The operating reserve of one solve (extension "reserve", ``docs/dispatch-extensions.md``).

    Attributes
    ----------
    battery
        The grid-forming battery's id.
    kw
        R: the reserve for forecast error held in every islanded step [kW].
    hold_h
        How long the reserve must last [h] (its energy is R · hold_h / ηd).
    ride_through
        Also cover the planned output of a genset in the step it starts (its start may fail).
    genset_trip
        Also cover the largest running genset's output (N-1).
    shortfall_cost_per_kwh
        π: what a kWh of reserve missing for ``hold_h`` costs in every step after the first
        [currency/kWh]. Missing over a whole horizon of T steps it costs π₀ + (T − 1) · Δ / hold_h · π
        per kWh: keep that below the most important tier's value of lost load, or the plan would
        rather shed that load than miss its reserve.
    now_cost_per_kwh
        π₀: the same in the first step when it is islanded, the one executed before the next cycle
        re-plans [currency/kWh]; None: π.
    early_charge_per_kwh
        ε: how much more a kWh charged into the grid-forming battery at the horizon's end costs than one
        charged now, in proportion to the step in between [currency/kWh]; a tie-breaker far below any
        price difference, so that of two charges at the same price the plan takes the earlier (0: off).
    """

    battery: str
    kw: float
    hold_h: float
    ride_through: bool = False
    genset_trip: bool = False
    shortfall_cost_per_kwh: float = 0.0
    now_cost_per_kwh: float | None = None
    early_charge_per_kwh: float = 0.0

    @classmethod
    def of(
        cls, site: Site, *, kw: float | None = None, step_h: float | None = None, horizon_h: float | None = None
    ) -> ReserveInputs | None:
        """The site's ``control.reserve`` for a solve (None when it is off or the site has no battery).

        ``kw``: the forecast-error reserve (at least the section's ``min_kw``); ``step_h``: the step
        length, the default hold time (else the control interval); ``horizon_h``: the plan's length
        (else the control horizon), for the default shortfall costs, shares of v₁, the most important
        tier's value of lost load: π₀ = 0.6 · v₁ in the step executed now (a plan that leaves it short
        lets the next deviation take the battery below its floor: everything but that tier is shed, or
        a genset started, first) and π = 0.3 · v₁ · hold / horizon later (a reserve short over the whole
        horizon costs at most 0.9 of the load it protects, so the plan never sheds that load to hold it);
        ε = 10⁻⁴ · v₁ (0.2 UAH/kWh at the hospital, far below a tariff's zones).
        """
        cfg, battery = site.control.reserve, site.grid_forming_battery()
        if cfg is None or battery is None:
            return None
        hold = cfg.hold_h or step_h or site.control.interval.total_seconds() / 3600
        top = min((t.priority for t in site.loads), default=None)
        voll = max((t.value_of_lost_load_per_kwh for t in site.loads if t.priority == top), default=0.0)
        price = cfg.shortfall_cost_per_kwh
        if price is None:
            horizon = horizon_h or site.control.horizon.total_seconds() / 3600
            price = RESERVE_LATER_SHARE * voll * hold / horizon
        now = cfg.now_cost_per_kwh if cfg.now_cost_per_kwh is not None else RESERVE_NOW_SHARE * voll
        early = RESERVE_EARLY_CHARGE_SHARE * voll
        return cls(battery.id, max(cfg.min_kw, kw or 0.0), hold, cfg.ride_through, cfg.genset_trip, price, now, early)


@dataclass(frozen=True)
class FeederInputs:
    """Whole-tier shedding of one solve (extension "feeders", ``docs/dispatch-extensions.md``).

    Attributes
    ----------
    tiers
        The tiers shed whole, by their feeder relay (every tier below the most important priority).
    discrete_steps
        The first steps in which they are on or off (later steps may shed a fraction).
    min_on_steps, min_off_steps
        Steps a relay stays closed / open once switched.
    pickup_fraction
        Cold-load pickup: extra demand, as a fraction of the tier's, in the step it is reconnected.
    closed
        Tier → its relay is closed now.
    hours_in_state
        Tier → hours its relay has been in that state [h].
    least_big_m_kw
        Tier → a floor for the model's bound on its demand (``feeders.big_m_kw``): a controller passes
        the largest it has used, so that its kept model is not rebuilt each time the forecast's peak
        moves across a power of two.
    """

    tiers: tuple[str, ...]
    discrete_steps: int
    min_on_steps: int = 0
    min_off_steps: int = 0
    pickup_fraction: float = 0.0
    closed: dict[str, bool] = field(default_factory=dict)
    hours_in_state: dict[str, float] = field(default_factory=dict)
    least_big_m_kw: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        site: Site,
        step_h: float,
        steps: int,
        *,
        closed: dict[str, bool] | None = None,
        hours_in_state: dict[str, float] | None = None,
    ) -> FeederInputs | None:
        """The site's ``control.feeders`` for a solve of ``steps`` steps of ``step_h`` (None when off or
        nothing can be shed). Relays not given are closed, since long enough to switch."""
        cfg = site.control.feeders
        if cfg is None or not site.loads:
            return None
        top = min(t.priority for t in site.loads)
        tiers = tuple(t.id for t in site.loads if t.priority > top)
        if not tiers:
            return None
        long_ago = max(cfg.min_on_h, cfg.min_off_h)
        return cls(
            tiers,
            min(steps, ceil_steps(cfg.discrete_h, step_h)),
            ceil_steps(cfg.min_on_h, step_h),
            ceil_steps(cfg.min_off_h, step_h),
            cfg.pickup_fraction,
            {t: (closed or {}).get(t, True) for t in tiers},
            {t: (hours_in_state or {}).get(t, long_ago) for t in tiers},
        )

    def lock_left(self, tier: str, step_h: float) -> int:
        """Steps at the start during which the relay must keep its state: its minimum time (closed or
        open) less the hours it has been so, rounded up, at least 0."""
        minimum_h = (self.min_on_steps if self.closed[tier] else self.min_off_steps) * step_h
        return ceil_steps(max(0.0, minimum_h - self.hours_in_state[tier]), step_h)


@dataclass(frozen=True)
class TerminalValues:
    """What fuel and stored energy left at the end of the horizon are worth (extension "outlook",
    ``docs/dispatch-extensions.md``): the long, coarse plan's marginal values.

    Attributes
    ----------
    fuel_value
        Fuel → λ_f: value of a unit of fuel not burnt within the horizon [currency per fuel unit]; it is
        added to the fuel's price in the objective.
    energy_value
        Battery → μ_b: value of a kWh stored at the end of the horizon [currency/kWh]; it replaces
        the site's ``terminal_value_per_kwh``.
    fuel_budget
        Fuel → what the long plan burns within the horizon (fuel units): the fine plan's fuel up to it
        costs λ_f a little less, beyond it a little more (``BUDGET_PREMIUM``), so that where the
        long plan's value makes the fine plan indifferent it burns what the long plan allotted.
    """

    fuel_value: dict[str, float] = field(default_factory=dict)
    energy_value: dict[str, float] = field(default_factory=dict)
    fuel_budget: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DispatchInputs:
    """A site, its forecast and its current state, plus the solver settings.

    Attributes
    ----------
    mip_gap
        Relative MIP gap at which HiGHS may stop.
    time_limit_s
        Wall-clock limit handed to HiGHS [s] (HiGHS may overrun it inside presolve).
    possible_outage
        One bool per step: the step lies in a ``possible`` outage window of the schedule. Any
        True switches on the contingency extension (``docs/dispatch-extensions.md``): every
        maximal run of True steps must be survivable without the grid. None or all False: the
        spec's model, exactly.
    protect_tiers
        Load tiers the contingency must carry through a possible outage. Empty: the site's
        ``grid.schedule.possible_outage_tiers``, else the tiers of the most important priority.
    reserve
        Switches on the operating reserve while islanded (None: off).
    feeders
        Switches on whole-tier shedding by feeder relays (None: off).
    terminal
        Values of fuel and stored energy at the horizon's end from the long outlook (None: the
        site's terminal values and no value for fuel: the spec's objective).
    power_now_kw
        Battery id → (charge, discharge) [kW, ≥ 0]: what the battery can do in the first step, as its
        inverter reports it now (derated, tripped, or not under control): bounds of c[b,0] and d[b,0]
        (the controller's extension; None or a battery not named: the site's ``max_*_kw``, the spec).
    generators_out
        Gensets left out of this plan (one that failed to start, or reports a fault): u[g,t] = 0 at every
        step (the controller's extension; empty: the spec).
    fuel_delivery_step
        The first step at which the next fuel delivery has come, when it comes within the horizon: the
        stocks bound the fuel burnt before it only (a full tank is assumed from it on; extension
        "delivery", ``docs/dispatch-extensions.md``). None: no delivery in the horizon (the spec).
    fuel_delivered
        With ``fuel_delivery_step``: what the delivery brings, per fuel name [fuel units], so that the
        fuel burnt from it on is bounded too (a planner's perfect foresight of a period with a known
        truck): a number D, all the fuel burnt ≤ stock + D; None for a fuel, the tank filled back to
        the stock it has now (the fuel burnt from the delivery on ≤ stock). None (default), or a fuel
        not named: a full tank is assumed from the delivery on (the controller's extension).
    """

    site: Site
    profiles: Profiles
    state: SiteState
    mip_gap: float
    time_limit_s: float
    possible_outage: npt.NDArray[np.bool_] | None = None
    protect_tiers: tuple[str, ...] = ()
    reserve: ReserveInputs | None = None
    feeders: FeederInputs | None = None
    terminal: TerminalValues | None = None
    power_now_kw: Mapping[str, tuple[float, float]] | None = None
    generators_out: frozenset[str] = frozenset()
    fuel_delivery_step: int | None = None
    fuel_delivered: Mapping[str, float | None] | None = None

    def __post_init__(self) -> None:
        if self.fuel_delivery_step is not None and not 0 <= self.fuel_delivery_step <= self.steps:
            raise ValueError(f"fuel_delivery_step must be within 0..{self.steps}, got {self.fuel_delivery_step}")
        if self.fuel_delivered is not None:
            if self.fuel_delivery_step is None:
                raise ValueError("fuel_delivered needs fuel_delivery_step: when the delivery comes")
            check_fuel_delivered(self.site, self.fuel_delivered)
        if self.possible_outage is not None:
            mask = np.asarray(self.possible_outage, dtype=bool).reshape(-1)
            if len(mask) != self.steps:
                raise ValueError(f"possible_outage has {len(mask)} values for {self.steps} steps")
            mask.setflags(write=False)
            object.__setattr__(self, "possible_outage", mask)
        tiers = {t.id for t in self.site.loads}
        if unknown := [t for t in self.protect_tiers if t not in tiers]:
            raise ValueError(f"protect_tiers names no load tier of the site: {unknown}")

    @property
    def steps(self) -> int:
        """Number of steps T."""
        return self.profiles.steps

    @property
    def step_h(self) -> float:
        """Step length Δ [h]."""
        return self.profiles.step_h

    def outage_windows(self) -> list[tuple[int, int]]:
        """Maximal runs ``(a, b)`` of possible-outage steps, first and last step included.

        Only steps with the grid available count: a step with α[t] = 0 is a definite outage, which
        the main plan already lives through (and a site without a grid has nothing to lose).
        """
        if self.possible_outage is None:
            return []
        runs: list[tuple[int, int]] = []
        for t in np.flatnonzero(self.possible_outage & (self.profiles.grid_available.to_numpy() > 0)):
            if runs and runs[-1][1] == t - 1:
                runs[-1] = (runs[-1][0], int(t))
            else:
                runs.append((int(t), int(t)))
        return runs

    def fuel_steps(self) -> range:
        """The steps whose fuel the stocks must cover: all of them, or those before the delivery."""
        return range(self.steps if self.fuel_delivery_step is None else self.fuel_delivery_step)

    def fuel_after_delivery(self, fuel: str) -> tuple[range, float] | None:
        """The second stock row of a delivery whose amount is known (``fuel_delivered``): the steps whose
        fuel it sums and its bound [fuel units] (all steps ≤ stock + D, or the steps from the delivery on
        ≤ stock for a tank filled back); None without one (no delivery in the horizon, an unlimited fuel,
        or a full tank assumed)."""
        stock = self.fuel_stock(fuel)
        if self.fuel_delivered is None or fuel not in self.fuel_delivered or stock is None:
            return None
        d = self.fuel_delivery_step
        if d is None or d >= self.steps:
            return None
        units = self.fuel_delivered[fuel]
        return (range(self.steps), stock + units) if units is not None else (range(d, self.steps), stock)

    def outage_weight(self) -> float:
        """ρ: the weight of a kWh each possible-outage window's shadow sheds, as a share of its value of
        lost load: the schedule's ``possible_outage_probability`` (1 without a schedule), and no more than
        1/k with k windows in the horizon, so that the windows together never weigh more than one certain
        outage (a litre burnt now is short in every later window's fuel row)."""
        windows = len(self.outage_windows())
        if windows == 0:
            return 0.0
        schedule = self.site.grid.schedule if self.site.grid else None
        probability = schedule.possible_outage_probability if schedule is not None else 1.0
        return min(probability, 1.0 / windows)

    def protected_tiers(self) -> tuple[str, ...]:
        """The tiers a possible outage must not shed: ``protect_tiers``, else the site's
        ``grid.schedule.possible_outage_tiers``, else every tier of the most important priority."""
        if self.protect_tiers:
            return self.protect_tiers
        schedule = self.site.grid.schedule if self.site.grid else None
        if schedule is not None and schedule.possible_outage_tiers:
            return tuple(schedule.possible_outage_tiers)
        if not self.site.loads:
            return ()
        top = min(t.priority for t in self.site.loads)
        return tuple(t.id for t in self.site.loads if t.priority == top)

    def energy_value(self, battery: Battery) -> float:
        """τ_b [currency/kWh]: the outlook's value of a kWh stored at the end, else the site's."""
        if self.terminal is not None and battery.id in self.terminal.energy_value:
            return self.terminal.energy_value[battery.id]
        return battery.terminal_value_per_kwh

    def fuel_value(self, fuel: str) -> float:
        """λ_f [currency per fuel unit]: the outlook's value of fuel left at the end (0 without it)."""
        return self.terminal.fuel_value.get(fuel, 0.0) if self.terminal is not None else 0.0

    def fuel_stock(self, fuel: str) -> float | None:
        """Stock of ``fuel`` available now (state first, then the site file); None = unlimited."""
        return self.state.fuel_stock.get(fuel, self.site.fuels[fuel].stock)

    def grid_arbitrage_impossible(self) -> bool:
        """True when import never costs less than export earns (ci[t] ≥ ce[t] at every step).

        Then importing and exporting in the same step never pays, and the grid direction
        binary of the spec can be dropped without changing the optimum.
        """
        ci = self.profiles.import_price_per_kwh.to_numpy()
        ce = self.profiles.export_price_per_kwh.to_numpy()
        return bool(np.all(ci >= ce))
