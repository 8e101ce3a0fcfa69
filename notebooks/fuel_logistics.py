# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,nbmake,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fuel logistics for the city: who gets diesel first, and by which truck
#
# The simulated city around Kharkiv (seeded): islands with their diesel stock, tank, burn and
# criticality weight (hospital 3, shelter 2, others 1), one depot, a few tankers on 10-hour shifts.
# The plan (a MILP solved by HiGHS, docs/fuel-logistics.md) first keeps the worst-off island, weighted,
# running as long as it can, then cuts the weighted dry hours; *nearest first* is what a dispatcher
# would do without it. Litres [l], hours [h] from the snapshot, road km.

# %% nbmake={"mock": {"SMALL": true}} tags=["parameters"]
import os

SMALL = os.environ.get("MICROGRID_NOTEBOOK_SMALL") == "1"  # CI plans a smaller city, faster

# %%
import pandas as pd

from microgrid import logistics

ISLANDS, TRUCKS, TIME_LIMIT_S = (24, 2, 8) if SMALL else (60, 3, 40)
fleet = logistics.city_fleet(ISLANDS, seed=0)
trucks = logistics.city_trucks(TRUCKS)
print(f"{len(fleet.islands)} islands, {len(trucks)} trucks of {trucks[0].capacity_l:,.0f} l, depot {fleet.depot.stock_l:,.0f} l")

# %% [markdown]
# ## The plan and nearest first

# %%
plan = logistics.plan_deliveries(fleet, trucks, days=2, time_limit_s=TIME_LIMIT_S)
near = logistics.baseline(fleet, trucks, days=2, method="nearest-first")
pd.DataFrame([plan.summary(), near.summary()]).set_index("method").T

# %% [markdown]
# What to look for: the plan's minimum weighted hours-to-dry is higher (the hospitals and shelters
# that run dry first are served first) and it leaves fewer dry hours, weighted by criticality.

# %%
pd.Series(
    {
        "dry hours, no delivery": plan.before.total_dry_h,
        "dry hours, the plan": plan.after.total_dry_h,
        "dry hours, nearest first": near.after.total_dry_h,
        "weighted dry hours, the plan": plan.after.weighted_dry_h,
        "weighted dry hours, nearest first": near.after.weighted_dry_h,
    }
).round(1)

# %% [markdown]
# ## The route: which truck, which trip, which island, when, how much

# %%
plan.route_table().head(15)

# %% [markdown]
# ## Hours-to-dry, island by island (capped at the 48-hour horizon)

# %%
logistics.hours_to_dry_figure(plan, near)

# %%
islands = plan.islands_table()
islands["hours_to_dry_nearest_first"] = near.islands_table()["hours_to_dry_after"]
islands.sort_values("hours_to_dry_before").head(10)
