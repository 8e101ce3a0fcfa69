"""Spec section "Grid connection"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs


def add_grid(m: pyo.ConcreteModel, inp: DispatchInputs, *, direction_binaries: bool) -> None:
    """Import y and export q [kW], and where Ge > 0 a direction k ∈ {0,1}::

        y[t] ≤ Gi · α[t]
        q[t] ≤ Ge · α[t]
        where Ge > 0:  y[t] ≤ Gi · k[t],   q[t] ≤ Ge · (1 − k[t])

    A site with no grid section gets y = q = 0. With ``direction_binaries=False`` (only valid
    when ci[t] ≥ ce[t] at every step, see ``DispatchInputs.grid_arbitrage_impossible``) the
    direction constraints are left out; netting y and q afterwards never raises the cost.
    """
    grid = inp.site.grid
    gi = grid.max_import_kw if grid else 0.0
    ge = grid.max_export_kw if grid else 0.0
    m.import_max_kw = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.export_max_kw = pyo.Param(m.T, mutable=True, initialize=0.0)
    set_grid_data(m, inp)
    m.import_kw = pyo.Var(m.T, bounds=lambda m, t: (0.0, m.import_max_kw[t]))
    m.export_kw = pyo.Var(m.T, bounds=lambda m, t: (0.0, m.export_max_kw[t]))
    if ge > 0 and direction_binaries:
        m.grid_dir = pyo.Var(m.T, within=pyo.Binary)
        m.grid_import_dir = pyo.Constraint(m.T, rule=lambda m, t: m.import_kw[t] <= gi * m.grid_dir[t])
        m.grid_export_dir = pyo.Constraint(m.T, rule=lambda m, t: m.export_kw[t] <= ge * (1 - m.grid_dir[t]))


def set_grid_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Gi · α[t] and Ge · α[t] [kW] (0 without a grid section)."""
    grid = inp.site.grid
    gi = grid.max_import_kw if grid else 0.0
    ge = grid.max_export_kw if grid else 0.0
    alpha = inp.profiles.grid_available.to_numpy().tolist()
    m.import_max_kw.store_values({t: gi * a for t, a in enumerate(alpha)}, check=False)
    m.export_max_kw.store_values({t: ge * a for t, a in enumerate(alpha)}, check=False)
