"""Property: for random telemetry and plans, no setpoint written is ever outside the limits.

Fast variant: random estimates (SOC in / out of its band / unknown, random and nonsensical live
limits, gensets running or not or unknown, grid up / down / unknown), random decisions (wild
values: huge, negative, infinite, NaN) from three sources (made up, the rules, a random plan row)
and random last decisions, through :func:`check` and :func:`to_points` (the real register values
for the hospital's maps), then the writer's own check with the site's limits.

Slow variant: a real controller cycle against the simulator, from a random initial state, with an
optimizer returning a random plan; the values the plant received are checked.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgrid.control import Decision, Estimate, SafetyConfig, check, rules
from microgrid.control.cycle import CycleReport
from microgrid.control.decisions import from_plan_row
from microgrid.control.points import to_points
from microgrid.dispatch import DispatchInputs
from microgrid.plans import Plan
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import GeneratorState, SiteState
from microgrid.telemetry.limits import site_limits
from microgrid.telemetry.wiring import SiteDevices, connect
from tests.control.conftest import FAST, T0, Optimizer, Rig, fast, plan_columns, rebind, run_rig, synthetic_plan

NAN, INF = float("nan"), float("inf")

wild = st.one_of(
    st.floats(-1e4, 1e4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, NAN, INF, -INF, 1e308, -1e308, 60.0, 125.0, 200.0, -125.0, -200.0]),
)


def soc_for(lo: float, hi: float) -> st.SearchStrategy[float | None]:
    """A SOC: unknown, at a band edge, just inside or outside it, or anywhere in [0, 1]."""
    edges = [lo, hi, lo - 1e-9, hi + 1e-9, lo + 1e-9, hi - 1e-9, 0.0, 1.0]
    return st.one_of(st.none(), st.sampled_from(edges), st.floats(0.0, 1.0))


limit = st.one_of(st.floats(0.0, 400.0), st.sampled_from([0.0, -5.0, 1e9, NAN]))
gen_state = st.one_of(st.none(), st.builds(GeneratorState, st.booleans(), st.floats(0.0, 48.0)))


@st.composite
def estimates(draw: st.DrawFn, site: Site) -> Estimate:
    soc = {b.id: draw(soc_for(b.soc_min, b.soc_max)) for b in site.batteries}
    gens = {g.id: draw(gen_state) for g in site.generators}
    return Estimate(
        time=T0,
        soc={k: v for k, v in soc.items() if v is not None},
        charge_limit_kw={b.id: draw(limit) for b in site.batteries if draw(st.booleans())},
        discharge_limit_kw={b.id: draw(limit) for b in site.batteries if draw(st.booleans())},
        generators={k: v for k, v in gens.items() if v is not None},
        grid_up=draw(st.sampled_from([True, False, None])),
        load_kw={t.id: draw(st.floats(0.0, 500.0)) for t in site.loads},
        tier_connected={t.id: draw(st.booleans()) for t in site.loads},
    )


@st.composite
def made_up(draw: st.DrawFn, site: Site) -> Decision:
    return Decision(
        battery_kw={b.id: draw(wild) for b in site.batteries if draw(st.integers(0, 3))},
        generator_on={g.id: draw(st.booleans()) for g in site.generators},
        generator_kw={g.id: draw(wild) for g in site.generators},
        pv_limit_kw={a.id: draw(st.one_of(st.none(), wild)) for a in site.pv},
        tier_connected={t.id: draw(st.booleans()) for t in site.loads},
    )


@st.composite
def plan_rows(draw: st.DrawFn, site: Site) -> dict[str, float]:
    return {c: draw(wild) for c in plan_columns(site)}


@st.composite
def decisions(draw: st.DrawFn, site: Site, est: Estimate, last: Decision | None) -> Decision:
    kind = draw(st.sampled_from(["made-up", "rules", "plan"]))
    if kind == "rules":
        return rules(site, est, last, "property")
    if kind == "plan":
        row = pd.Series(draw(plan_rows(site)))
        demand = {t.id: draw(st.floats(0.0, 500.0)) for t in site.loads}
        return from_plan_row(site, row, demand, {a.id: draw(st.floats(0.0, 200.0)) for a in site.pv})
    return draw(made_up(site))


last_decisions = st.one_of(
    st.none(),
    st.builds(
        lambda a, b: Decision(battery_kw={k: v for k, v in {"bess1": a, "bess2": b}.items() if v is not None}),
        st.one_of(st.none(), st.floats(-250.0, 250.0)),
        st.one_of(st.none(), st.floats(-400.0, 400.0)),
    ),
)


def assert_safe(site: Site, safe: Decision, est: Estimate, last: Decision | None, cfg: SafetyConfig) -> None:
    """The decision after the safety layer keeps every limit."""
    for bat in site.batteries:
        kw = safe.battery_kw[bat.id]
        assert math.isfinite(kw)
        live_c = min(bat.max_charge_kw, max(0.0, est.charge_limit_kw.get(bat.id, bat.max_charge_kw)))
        live_d = min(bat.max_discharge_kw, max(0.0, est.discharge_limit_kw.get(bat.id, bat.max_discharge_kw)))
        assert -live_c - 1e-9 <= kw <= live_d + 1e-9
        assert -bat.max_charge_kw <= kw <= bat.max_discharge_kw
        soc = est.soc.get(bat.id)
        if soc is None:
            assert kw == 0.0
        else:
            if soc <= bat.soc_min:
                assert kw <= 0.0
            if soc >= bat.soc_max:
                assert kw >= 0.0
            # held for the whole interval, the battery does not cross its band from inside it
            dt_h = site.control.interval.total_seconds() / 3600
            energy = soc * bat.capacity_kwh - dt_h * (
                kw / bat.discharge_efficiency if kw > 0 else kw * bat.charge_efficiency
            )
            if bat.soc_min <= soc <= bat.soc_max:
                assert bat.soc_min * bat.capacity_kwh - 1e-6 <= energy <= bat.soc_max * bat.capacity_kwh + 1e-6
        if last is not None and bat.id in last.battery_kw:  # the ramp holds unless a live limit overrode it
            step = cfg.ramp_fraction * max(bat.max_charge_kw, bat.max_discharge_kw)
            dt_h = site.control.interval.total_seconds() / 3600
            room_c = (
                0.0
                if soc is None
                else max(0.0, (bat.soc_max - soc) * bat.capacity_kwh / (bat.charge_efficiency * dt_h))
            )
            room_d = (
                0.0
                if soc is None
                else max(0.0, (soc - bat.soc_min) * bat.capacity_kwh * bat.discharge_efficiency / dt_h)
            )
            low, high = -min(live_c, room_c), min(live_d, room_d)
            # islanded, a battery that does not form the grid charges from what PV and the gensets spare, no
            # more: that charge is scaled down after the ramp (toward 0, never past it)
            forming = site.grid_forming_battery()
            scaled_down = est.grid_up is False and forming is not None and bat.id != forming.id
            ramped_high = last.battery_kw[bat.id] + step  # the ramp allows no less charge than this
            assert (
                abs(kw - last.battery_kw[bat.id]) <= step + 1e-6
                or kw in (low, high)
                or (scaled_down and ramped_high < 0.0 and ramped_high - 1e-6 <= kw <= 0.0)
            )
    for gen in site.generators:
        kw = safe.generator_kw[gen.id]
        assert 0.0 <= kw <= gen.max_kw
        if not safe.generator_on.get(gen.id):  # a setpoint only for a genset asked to run (starting or on)
            assert kw == 0.0
        else:
            assert kw >= gen.min_kw
    for array in site.pv:
        pv = safe.pv_limit_kw.get(array.id)
        assert pv is None or 0.0 <= pv <= array.peak_kw
    first = min(site.loads, key=lambda t: t.priority)
    assert safe.tier_connected[first.id] is True


def assert_points(site: Site, safe: Decision, devices: SiteDevices, points: dict[str, dict[str, Any]]) -> None:
    """The register values: in range, never refused by the writer, the same limits as the decision."""
    peaks = {a.id: a.peak_kw for a in site.pv}
    batteries = {b.id: b for b in site.batteries}
    gensets = {g.id: g for g in site.generators}
    first = min(site.loads, key=lambda t: t.priority)
    for device_id, values in points.items():
        binding = devices.bindings[device_id]
        device = devices.devices[device_id]
        limits = site_limits(site, binding, device.map)
        for name, value in values.items():
            assert device.check(name, value, limits) is None, (device_id, name, value)
        asset = binding.asset or ""
        if asset in batteries:
            kw = values["power_setpoint_kw"]
            assert -batteries[asset].max_charge_kw <= kw <= batteries[asset].max_discharge_kw
            assert kw == pytest.approx(safe.battery_kw[asset], abs=5e-4)
        if asset in gensets:
            assert 0.0 <= values["power_setpoint_kw"] <= gensets[asset].max_kw
        if asset in peaks:
            assert 0.0 <= values["power_limit_pct"] <= 100.0
        if first.id in binding.feeders:
            assert values[f"feeder_{binding.feeders[first.id]}_command"] == 1


@pytest.fixture(scope="module")
def hospital_devices(hospital: Site) -> SiteDevices:
    """The hospital's devices: only their maps are used (no connection is ever opened)."""
    return connect(hospital)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_setpoint_outside_limits(hospital: Site, hospital_devices: SiteDevices, data: st.DataObject) -> None:
    est = data.draw(estimates(hospital), label="estimate")
    last = data.draw(last_decisions, label="last")
    decision = data.draw(decisions(hospital, est, last), label="decision")
    cfg = SafetyConfig(ramp_fraction=data.draw(st.sampled_from([1.0, 0.5, 0.1]), label="ramp"))
    safe, _notes = check(hospital, decision, est, last, cfg)
    assert_safe(hospital, safe, est, last, cfg)
    heartbeat = data.draw(st.integers(0, 10**6), label="heartbeat")
    points = to_points(hospital, safe, hospital_devices, heartbeat)
    assert_points(hospital, safe, hospital_devices, points)


# -- the same through a real cycle against the simulator -----------------------------------------


plan_values = st.one_of(st.floats(-1000.0, 1000.0), st.sampled_from([0.0, 1.0, 60.0, 125.0, 200.0, 1e6, -1e6]))
soc_plant = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.10, 0.15, 0.95, 1.0]))


@st.composite
def initial_states(draw: st.DrawFn, site: Site) -> SiteState:
    return SiteState(
        soc={b.id: draw(soc_plant) for b in site.batteries},
        generators={g.id: GeneratorState(draw(st.booleans()), 2.0) for g in site.generators},
        fuel_stock={name: f.stock for name, f in site.fuels.items()},
    )


def check_plant(rig: Rig, report: CycleReport) -> None:
    site, plant = rig.ctl.site, rig.sim.plant
    est = report.estimate
    assert est is not None
    assert report.decision is not None
    for device_id, result in report.writes.items():
        assert not result.refused, (device_id, result.refused)
    for bat in site.batteries:
        kw = plant.batteries[bat.id].setpoint_kw
        assert -est.charge_limit_kw[bat.id] - 1e-3 <= kw <= est.discharge_limit_kw[bat.id] + 1e-3
        soc = est.soc[bat.id]
        if soc <= bat.soc_min:
            assert kw <= 0.0
        if soc >= bat.soc_max:
            assert kw >= 0.0
    for gen in site.generators:
        kw = plant.gensets[gen.id].setpoint_kw
        assert 0.0 <= kw <= gen.max_kw
        if not report.decision.generator_on.get(gen.id):
            assert kw == 0.0
    for array in site.pv:
        assert 0.0 <= plant.pv_limit_kw[array.id] <= array.peak_kw
    first = min(site.loads, key=lambda t: t.priority)
    assert plant.relay_closed[first.id]


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_setpoint_outside_limits_on_the_plant(hospital: Site, winter: Profiles, data: st.DataObject) -> None:
    site = fast(rebind(hospital, **FAST))
    state = data.draw(initial_states(site), label="state")
    rows = [data.draw(st.fixed_dictionaries({c: plan_values for c in plan_columns(site)})) for _ in range(2)]

    def random_plan(inputs: DispatchInputs) -> Plan:
        frame_values = {c: [rows[0][c], rows[1][c]] * (inputs.profiles.steps // 2) for c in rows[0]}
        return synthetic_plan(inputs, frame_values)

    async def body(rig: Rig) -> None:
        for _ in range(2):  # the second cycle also ramps from the first one's setpoints
            report = await rig.cycle()
            assert report.source == "plan"
            check_plant(rig, report)
            await rig.step(60)

    run_rig(site, winter, body, state=state, optimizer=Optimizer(random_plan))
