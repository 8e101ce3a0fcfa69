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
# # An outage week, day by day: is the diesel stewarded?
#
# The boiler house and its shelter through an announced repair outage that starts early and ends
# late, with diesel for 86 % of what full service of every tier would take. The controller is told
# only the schedule as it was published (day ahead, the repair announced whole the evening before)
# and forecasts with its own forecaster; the truth differs. Against it: perfect foresight of the
# whole week in one MILP (the best any controller could do knowing the future).
#
# What to look for: the critical tier is never lost where perfect foresight loses none; the
# comfort and essential tiers are rationed evenly over the outage (not served in full for days and
# then cut); the grid-forming battery stays above its floor; the long outlook's value of a litre of
# diesel says how scarce the fuel is.

# %% nbmake={"mock": {"SMALL": true}} tags=["parameters"]
import os

SMALL = os.environ.get("MICROGRID_NOTEBOOK_SMALL") == "1"  # CI runs a few hours instead of a week

# %%
import pandas as pd

from microgrid import planning

DAYS = 0.125 if SMALL else 7  # small: the first 3 h, an outage and the grid back 2 h in
week = planning.outage_week("boiler-house", "repair", seed=0, days=max(DAYS, 1))
fuel = week.site.fuels["diesel"]
print(f"{week.name}: {fuel.stock:.0f} l of diesel, full service would take {week.full_service_fuel:.0f} l")
print(f"grid down {1 - week.truth.grid_available.mean():.0%} of the time; {len(week.published)} publications")

# %% [markdown]
# ## The controller in closed loop, and perfect foresight

# %%
mpc = planning.simulate(
    week.site,
    week.truth,
    published=week.published,
    reference=week.reference,
    days=DAYS,
    mip_gap=0.02,
    time_limit_s=2.0,
    progress=not SMALL,
)
best = planning.perfect_foresight(week.site, week.truth, days=DAYS, time_limit_s=60 if SMALL else 600, autonomy=False)
table = pd.DataFrame({"mpc": mpc.kpis, "perfect_foresight": best.kpis})
table.loc[
    ["cost_total", "fuel_burnt.diesel", "fuel_left.diesel", "unserved_kwh.critical", "unserved_kwh.essential",
     "unserved_kwh.comfort", "grid_forming_below_floor"]
].round(1)

# %% [markdown]
# ## Day by day
#
# Fuel burnt, energy shed per tier, the lowest SOC of the grid-forming battery against its floor,
# the reserve it held while islanded, and the long outlook's value of a litre of diesel.

# %%
battery = week.site.grid_forming_battery()
assert battery is not None


def by_day(result: planning.SimulationResult) -> pd.DataFrame:
    i = result.intervals
    hours = (i.index[1] - i.index[0]) / pd.Timedelta(hours=1) if len(i) > 1 else 0.25
    local = i.index.tz_convert(week.site.site.timezone).normalize()
    fuel_burnt = sum(i[f"generator.{g.id}.fuel"] for g in week.site.generators)
    days = pd.DataFrame(
        {
            "fuel_l": fuel_burnt.groupby(local).sum(),
            **{f"{t.id}_shed_kwh": (i[f"load.{t.id}.shed_kw"] * hours).groupby(local).sum() for t in week.site.loads},
            "min_soc": i[f"battery.{battery.id}.soc"].groupby(local).min(),
        }
    )
    if "reserve_kw" in i:
        days["reserve_kw"] = i["reserve_kw"].groupby(local).max()
    if "outlook.diesel.value" in i:
        days["diesel_value"] = i["outlook.diesel.value"].groupby(local).mean()
    return days.round(1)


print(f"{battery.id}: floor {battery.soc_min:.0%}")
by_day(mpc)

# %%
by_day(best)

# %%
planning.plots.soc_and_fuel(mpc, "Boiler house, repair week (MPC)")

# %%
planning.plots.shedding(mpc, "Load shed per tier (MPC)")

# %% [markdown]
# The whole table of weeks (both sites, three patterns, MPC against perfect foresight and the
# rules) is `python benchmarks/outage_weeks.py`; the README quotes its latest figures.
