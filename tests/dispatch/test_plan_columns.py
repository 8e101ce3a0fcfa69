"""The plan's columns are exactly those microgrid.plan_columns names (the spec's), whatever the site has."""

from __future__ import annotations

from microgrid import plan_columns as pc
from tests.dispatch.helpers import CRITICAL, battery, diesel, genset, grid, solve


def test_a_solved_plan_has_exactly_the_named_columns() -> None:
    """One of each asset: 2 battery + 3 generator + 1 PV + 2 load + 2 grid columns, and no other."""
    plan = solve(
        {
            "grid": grid(),
            "batteries": [battery()],
            "generators": [genset()],
            "fuels": diesel(),
            "pv": [{"id": "roof", "peak_kw": 10}],
            "loads": [CRITICAL],
        },
        {"load.crit": [5, 20], "pv.roof": [4, 0]},
    )
    expected = [
        pc.battery_charge_kw("bat"),
        pc.battery_discharge_kw("bat"),
        pc.battery_soc("bat"),
        pc.generator_kw("dg"),
        pc.generator_on("dg"),
        pc.generator_fuel("dg"),
        pc.pv_kw("roof"),
        pc.load_served_kw("crit"),
        pc.load_shed_kw("crit"),
        pc.GRID_IMPORT_KW,
        pc.GRID_EXPORT_KW,
    ]
    assert sorted(plan.frame.columns) == sorted(expected)
    # the wire names the spec fixes (a renamed function must not change them)
    assert {"battery.bat.charge_kw", "generator.dg.on", "load.crit.shed_kw", "grid.import_kw"} <= set(expected)
