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
# # Size an island with a sweep
#
# Which battery, how much diesel, how much PV? A sweep evaluates every design (a grid of
# overrides of the site) on every scenario (profiles) and returns one row of KPIs each. It runs
# on Dask: a local cluster of worker processes by default, or a real cluster given its
# scheduler address (`scheduler="tcp://host:8786"`).
#
# The sweep file `models/sweeps/hospital-sizing.yaml` documents the format; here it is read,
# (in CI: cut down), run, and read back as a table, a heatmap and a Pareto front of cost against
# unserved critical energy.

# %% tags=["parameters"] nbmake={"mock": {"SMALL": true}}
import os

SMALL = os.environ.get("MICROGRID_NOTEBOOK_SMALL") == "1"  # CI runs 4 short tasks

# %%
from dataclasses import replace
from pathlib import Path

import microgrid
from microgrid import planning

ROOT = Path.cwd() if (Path.cwd() / "models").exists() else Path.cwd().parent
site = microgrid.read_site(ROOT / "models/sites/hospital.yaml")
spec = planning.read_sweep(ROOT / "models/sweeps/hospital-sizing.yaml")
print(
    f"{len(spec.designs)} designs × {len(spec.scenarios)} scenarios = {spec.tasks} tasks, controller {spec.controller}"
)
spec.designs[:3]

# %%
if SMALL:  # two battery sizes × two fuel stocks, on a quarter of the winter day
    designs = tuple(
        (n, d) for n, d in spec.designs if d["pv.roof.peak_kw"] == 150 and d["battery.bess2.capacity_kwh"] != 1200
    )
    spec = replace(spec, designs=designs, scenarios=(replace(spec.scenarios[0], days=0.25),))
PARQUET = None if SMALL else "sizing-results.parquet"

# two local worker processes; workers=0 runs in this process, scheduler="tcp://host:8786" on a cluster
results = planning.run_sweep(site, spec, workers=2, parquet=PARQUET)
results[["design", "scenario", *spec.grid_keys, "cost_total", "unserved_kwh.critical", "fuel_burnt.diesel"]]

# %% [markdown]
# Every row is one design on one scenario; `error` says why a task failed (none did here).
# The results are also written to `sizing-results.parquet` (full run) for later analysis.

# %%
assert results["error"].isna().all(), results["error"].dropna()
planning.plots.sweep_heatmap(results, spec.grid_keys[0], spec.grid_keys[1], "cost_total")

# %% [markdown]
# ## Cost against risk
#
# The Pareto front: the designs no other beats on both cost and unserved critical energy
# (averaged over the scenarios). Everything off the front is dominated.

# %%
per_design = results.groupby("design")[["cost_total", "unserved_kwh.critical"]].mean().reset_index()
planning.plots.pareto_front(per_design, "cost_total", "unserved_kwh.critical")

# %%
front = per_design[planning.plots.pareto_mask(per_design["cost_total"], per_design["unserved_kwh.critical"])]
front.merge(results[["design", *spec.grid_keys]].drop_duplicates(), on="design")

# %% [markdown]
# ## One design by hand
#
# `apply_design` returns the designed site and profiles, to inspect or to simulate further.

# %%
designed, _ = planning.apply_design(
    site,
    microgrid.read_profiles(ROOT / "data/hospital-winter-day.csv", site),
    {"battery.bess2.capacity_kwh": 800, "pv.roof.peak_kw": 300},
)
[(b.id, b.capacity_kwh) for b in designed.batteries], [(a.id, a.peak_kw) for a in designed.pv]
