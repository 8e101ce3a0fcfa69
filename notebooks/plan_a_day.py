# ---
# jupyter:
#   jupytext:
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
# # Plan a day of the hospital island
#
# The public API only: read the site and a forecast, plan the dispatch, read the plan.
# Powers in kW, energies in kWh, money in the site's currency (UAH).

# %%
from pathlib import Path

import microgrid

ROOT = Path.cwd() if (Path.cwd() / "models").exists() else Path.cwd().parent
site = microgrid.read_site(ROOT / "models/sites/hospital.yaml")
profiles = microgrid.read_profiles(ROOT / "data/hospital-winter-day.csv", site)
state = microgrid.read_state(ROOT / "data/hospital-state.json", site)

# %%
plan = microgrid.plan(site, profiles, state, mip_gap=0.01)
print(plan.status.value, f"objective {plan.objective:,.0f} {site.site.currency}, gap {plan.mip_gap:.2%}")

# %% [markdown]
# One row per 15-minute step; the columns are the plan CSV's (`battery.<id>.soc` is a fraction).

# %%
frame = plan.to_frame()
frame.filter(like="soc").resample("2h").last().round(2)

# %%
plan.cost().as_dict(), plan.energy_shed_kwh(), plan.fuel_burnt(), plan.generator_starts()
