"""A map-free chart of a fuel plan: each island's hours-to-dry before and after (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from microgrid.logistics.routes import FuelPlan

__all__ = ["hours_to_dry_figure", "save_chart"]


def hours_to_dry_figure(plan: FuelPlan, baseline: FuelPlan | None = None) -> Figure:
    """Islands sorted by hours-to-dry with no delivery; before (grey), with ``plan`` (blue) and,
    when given, with ``baseline`` (orange dots) [h, capped at the horizon]."""
    from matplotlib.figure import Figure  # noqa: PLC0415 - no pyplot: no GUI backend, no global state

    order = np.argsort(plan.before.hours_to_dry, kind="stable")
    x = np.arange(len(order))
    fig = Figure(figsize=(max(6.0, min(16.0, 0.12 * len(order) + 4)), 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(x, plan.after.hours_to_dry[order], color="tab:blue", label=f"with the plan ({plan.method})")
    ax.bar(x, plan.before.hours_to_dry[order], color="0.6", label="no delivery")
    if baseline is not None:
        ax.plot(x, baseline.after.hours_to_dry[order], "o", ms=4, color="tab:orange", label=baseline.method, zorder=3)
    ax.axhline(plan.problem.horizon_h, color="k", lw=0.8, ls="--")
    ax.set_xlabel("island (sorted by hours-to-dry with no delivery)")
    ax.set_ylabel("hours to dry [h]")
    ax.set_title(
        f"min weighted hours-to-dry {plan.before.min_weighted_h:.1f} → {plan.after.min_weighted_h:.1f} h; "
        f"dry hours {plan.before.total_dry_h:,.0f} → {plan.after.total_dry_h:,.0f}"
    )
    if len(order) <= 40:
        ids = [plan.problem.fleet.islands[i].id for i in order]
        ax.set_xticks(x, ids, rotation=90, fontsize=7)
    ax.set_ylim(0, plan.problem.horizon_h * 1.25)
    ax.legend(loc="upper left", fontsize=8, ncols=3)
    return fig


def save_chart(plan: FuelPlan, path: Path, baseline: FuelPlan | None = None) -> Path:
    """Write :func:`hours_to_dry_figure` as a PNG at ``path``."""
    hours_to_dry_figure(plan, baseline).savefig(path, dpi=110)
    return path
