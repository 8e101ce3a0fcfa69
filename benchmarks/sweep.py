"""Sweep throughput: the hospital sizing sweep serially (in process) and on a local Dask cluster
with 1 and 2 worker processes.

    python benchmarks/sweep.py                   # models/sweeps/hospital-sizing.yaml: 12 designs × 2 days
    python benchmarks/sweep.py --controller mpc --designs 4

Prints, per setting, the wall time, the tasks per minute and the speed-up over the serial run,
and checks that every setting gives the same table (same seeds, same results; only the tasks'
own timings differ).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sweep", type=Path, default=ROOT / "models" / "sweeps" / "hospital-sizing.yaml")
    parser.add_argument("--site", type=Path, default=ROOT / "models" / "sites" / "hospital.yaml")
    parser.add_argument("--controller", default=None, help="override the sweep's controller (rules, mpc, ...)")
    parser.add_argument("--designs", type=int, default=None, help="use only the first N designs")
    args = parser.parse_args(argv)

    from dataclasses import replace

    from microgrid import read_site
    from microgrid.planning.sweep import read_sweep, run_sweep

    site, spec = read_site(args.site), read_sweep(args.sweep)
    if args.controller:
        spec = replace(spec, controller=args.controller)
    if args.designs:
        spec = replace(spec, designs=spec.designs[: args.designs])
    tasks = len(spec.designs) * len(spec.scenarios)
    print(f"{tasks} tasks ({len(spec.designs)} designs × {len(spec.scenarios)} scenarios), {spec.controller}")
    tables: dict[str, pd.DataFrame] = {}
    walls: dict[str, float] = {}
    for label, workers in (("serial", 0), ("dask, 1 worker", 1), ("dask, 2 workers", 2)):
        started = time.perf_counter()
        tables[label] = run_sweep(site, spec, workers=workers, progress=False)
        walls[label] = time.perf_counter() - started
        print(
            f"{label:16s} {walls[label]:7.1f} s  {tasks / walls[label] * 60:6.1f} tasks/min"
            f"  speed-up {walls['serial'] / walls[label]:.2f}×"
        )
    timing = {"task_s"}  # wall time of each task: the one column that may differ
    numeric = [
        c for c in tables["serial"].columns if pd.api.types.is_numeric_dtype(tables["serial"][c]) and c not in timing
    ]
    same = all(tables[k][numeric].equals(tables["serial"][numeric]) for k in tables)
    print(f"same results in every setting: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
