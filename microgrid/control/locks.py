"""Minimum up times the tank cannot feed are shortened before the plan is made.

The spec's model holds a running genset on until its minimum up time has passed (``u[g,t] = on0``
for ``t < ceil((min_up_h − h0) / Δ)``) and never burns more fuel than the stock. Near the end of a
tank both rows are hard: a genset started ``h0`` hours ago that needs, at its minimum load through
what is left of its lock, more fuel than there is makes the whole model infeasible, and the cycle
falls back to the previous plan and then the rules, the worst moment for either (a boiler house's
outage week lost critical load this way: 4.0 l left, two 15-min steps of lock at 2.01 l each).

The same rows keep a stopped genset from starting at all when its tank holds less than a minimum up
time at minimum load (the hospital's last 14.7 l, 4.475 l per 15 min at 60 kW against four steps of
lock): the plan then runs the grid-forming battery below its floor with the last litres unused.

On site the tank ends the run, not the minimum up time (a wear rule, not physics). So the controller
plans (:func:`fit_to_fuel`)

* with each genset's minimum up time no longer than the whole steps its fuel's stock feeds it at
  minimum load (:func:`cap_min_up`; at least one step: a stock that cannot feed one step already
  keeps the set off through the fuel row), and
* from a state in which every running genset of a fuel that cannot feed the locks left is past its
  minimum up time (:func:`release_unfed_locks`): the plan may stop it now or keep it on while the
  fuel lasts.

And with the grid back (:func:`release_locks_with_grid`) a running genset of a fuel with a stock is
past its minimum up time too: a set started late in an outage, held on at its minimum load for up to
its minimum up time after the grid returned, only displaced grid import with rationed diesel (the
hospital's rotating week: 390 kWh from the gensets with the grid up, ≈ 105 l of 1,480, every kWh of
it in the hour after an outage ended).

The first two touch only the cycles near the end of a tank. The spec's ``plan`` is unchanged; only the site
and state the controller hands it are. Pure: numbers in, numbers out.

Should the plan still be infeasible (a locked relay keeping a tier on that nothing can feed, a genset
locked on with nowhere to put its minimum load), the cycle plans once more, within the same budget,
:func:`without_locks`: a plan that sheds what it must beats the previous plan or the rules, which
know less of what is left.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from microgrid.dispatch.inputs import DispatchInputs, ceil_steps
from microgrid.site import Generator, Site
from microgrid.state import GeneratorState, SiteState

__all__ = [
    "UNLOCKED",
    "cap_min_up",
    "fit_to_fuel",
    "lock_fuel",
    "release_locks_with_grid",
    "release_unfed_locks",
    "without_locks",
]

UNLOCKED = "every genset free to start or stop now, every tier sheddable in part"
"""What :func:`without_locks` relaxes, as the cycle's event says it."""


def fit_to_fuel(site: Site, state: SiteState, step_h: float) -> tuple[Site, SiteState, tuple[str, ...]]:
    """``site`` and ``state`` for a plan of ``step_h``-hour steps whose minimum-up rows the fuel can feed:
    :func:`cap_min_up`, then :func:`release_unfed_locks` on the capped site; the notes of both."""
    capped, capped_notes = cap_min_up(site, state, step_h)
    released, released_notes = release_unfed_locks(capped, state, step_h)
    return capped, released, capped_notes + released_notes


def _burn_step_at_min(gen: Generator, step_h: float) -> float:
    """Fuel one step at minimum load burns [fuel unit]."""
    return step_h * (gen.fuel_per_kwh * gen.min_kw + gen.fuel_per_hour_running)


def cap_min_up(site: Site, state: SiteState, step_h: float) -> tuple[Site, tuple[str, ...]]:
    """``site`` with each genset's ``min_up_h`` cut to ``k · Δ``, ``k`` the whole steps at minimum load its
    fuel's stock feeds, when that is shorter (and ``k ≥ 1``); ``site`` itself when nothing is cut."""
    cut: dict[str, float] = {}
    for gen in site.generators:
        stock = state.fuel_stock.get(gen.fuel)
        burn = _burn_step_at_min(gen, step_h)
        if stock is None or burn <= 0.0:
            continue
        steps = math.floor(stock / burn + 1e-9)
        if steps >= 1 and steps * step_h < gen.min_up_h - 1e-9:
            cut[gen.id] = steps * step_h
    if not cut:
        return site, ()
    generators = [g.model_copy(update={"min_up_h": cut[g.id]}) if g.id in cut else g for g in site.generators]
    notes = tuple(
        f"genset {g.id!r}: minimum up time planned as {cut[g.id]:g} h, not {g.min_up_h:g} h: "
        f"{state.fuel_stock[g.fuel]:.2f} of {g.fuel!r} feed no more at minimum load"
        for g in site.generators
        if g.id in cut
    )
    return site.model_copy(update={"generators": generators}), notes


def lock_fuel(site: Site, state: SiteState, step_h: float) -> dict[str, float]:
    """Fuel [fuel unit] per fuel that the running gensets' initial minimum-up locks burn at least.

    Each running genset still locked for ``L = ceil((min_up_h − h0) / Δ)`` steps burns at least
    ``L · Δ · (fuel_per_kwh · min_kw + fuel_per_hour_running)``: its minimum load through the lock.
    """
    need: dict[str, float] = {}
    for gen in site.generators:
        now = state.generators[gen.id]
        if not now.on or now.hours_in_state >= gen.min_up_h:
            continue
        steps = ceil_steps(gen.min_up_h - now.hours_in_state, step_h)
        need[gen.fuel] = need.get(gen.fuel, 0.0) + steps * _burn_step_at_min(gen, step_h)
    return need


def release_unfed_locks(site: Site, state: SiteState, step_h: float) -> tuple[SiteState, tuple[str, ...]]:
    """``state`` with the minimum-up locks its fuel cannot feed released, and a note per genset released.

    A fuel whose stock (``state.fuel_stock``; None: unlimited) is below :func:`lock_fuel` has every
    running, still locked genset burning it set to ``hours_in_state = min_up_h`` (past its lock).
    Other gensets and fuels are left as they are; ``state`` itself is not changed.
    """
    short = {
        fuel
        for fuel, need in lock_fuel(site, state, step_h).items()
        if (stock := state.fuel_stock.get(fuel)) is not None and need > stock
    }
    return _past_min_up(
        site,
        state,
        short,
        lambda fuel: f"{state.fuel_stock[fuel]:.2f} of {fuel!r} cannot feed the locks at minimum load",
    )


def release_locks_with_grid(site: Site, state: SiteState) -> tuple[SiteState, tuple[str, ...]]:
    """``state`` with every running, still locked genset of a fuel with a stock past its minimum up time,
    and a note per genset released; for a cycle that sees the grid up outside emergency mode (the caller's
    test). Its minimum down time still holds once the plan stops it. ``state`` itself is not changed."""
    rationed = {fuel for fuel, stock in state.fuel_stock.items() if stock is not None}
    return _past_min_up(site, state, rationed, lambda fuel: f"the grid is back, and {fuel!r} is rationed")


def _past_min_up(
    site: Site, state: SiteState, fuels: set[str], why: Callable[[str], str]
) -> tuple[SiteState, tuple[str, ...]]:
    """``state`` with every running, still locked genset burning one of ``fuels`` past its minimum up time
    (``hours_in_state = min_up_h``), and a note per genset released ending in ``why(fuel)``; ``state``
    itself when none is."""
    generators = dict(state.generators)
    notes: list[str] = []
    for gen in site.generators:
        now = generators[gen.id]
        if gen.fuel in fuels and now.on and now.hours_in_state < gen.min_up_h:
            generators[gen.id] = GeneratorState(on=True, hours_in_state=gen.min_up_h)
            notes.append(
                f"genset {gen.id!r}: its minimum up time ({gen.min_up_h:g} h, running {now.hours_in_state:g} h) "
                f"released: {why(gen.fuel)}"
            )
    if not notes:
        return state, ()
    return dataclasses.replace(state, generators=generators), tuple(notes)


def without_locks(inputs: DispatchInputs) -> DispatchInputs:
    """``inputs`` with nothing held by a timer: every genset past its minimum up and down time (it may
    start or stop at once), and no feeder extension (every tier sheddable in part, the reference model's
    shed; the decision opens a relay only for a tier shed whole). Always feasible: every tier can be shed,
    every genset stopped, every PV curtailed."""
    generators = {
        gen.id: GeneratorState(
            on=(now := inputs.state.generators[gen.id]).on,
            hours_in_state=max(now.hours_in_state, gen.min_up_h, gen.min_down_h),
        )
        for gen in inputs.site.generators
    }
    state = dataclasses.replace(inputs.state, generators=generators)
    return dataclasses.replace(inputs, state=state, feeders=None)
