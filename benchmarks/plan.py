"""Benchmark ``microgrid.plan`` on three generated cases and print where the time goes.

    python benchmarks/plan.py               # cases a, b, c at the site's gap (0.001), 60 s limit
    python benchmarks/plan.py --quick       # CI smoke: case a only, gap 0.01; exit 1 unless optimal
    python benchmarks/plan.py --repeat 3    # median timings of 3 runs per case
    python benchmarks/plan.py --suite       # 13 generated cases against the straightforward model
    python benchmarks/plan.py --suite --suite-case s01 s02 --mip-gap 1e-4

``--suite`` (``benchmarks/_suite.py``): 96-672 steps, 2+2 to 20+20 assets, grid-tied, islanded,
exporting and fuel-short sites; per case HiGHS time, Python overhead (build + hand-off + extract)
and wall time of ``microgrid.plan`` and of the spec built the obvious way in raw highspy
(``benchmarks/_straight.py``: every binary, HiGHS defaults), in the same worker process, to the
same gap (default 0.001) and time limit; ``ratio`` = plan's wall / straightforward wall; the optima
must agree (exit 1 otherwise).

Cases (``benchmarks/_sites.py``): (a) the shipped hospital, 96 × 15 min, 2 batteries + 2 gensets;
(b) the hospital ×5, 96 × 15 min, 10 + 10; (c) the hospital ×2, 576 × 5 min (48 h), 4 + 4.

Columns: ``build`` = pyomo model construction; ``solve`` = wall time of the solve call (compiling
the model to arrays, the hand-off, HiGHS, loading the solution back); ``highs`` = HiGHS's run alone;
``extract`` = reading the plan frame out; ``py%`` = (build + solve − highs + extract) / highs;
``solves`` = HiGHS calls (2 when the relaxed battery modes had to be re-solved with binaries).
Each timing is summed over the HiGHS calls of one plan, then the median over ``--repeat`` runs.

Peak memory: every case runs in a fresh worker process; ``peak MiB`` is the growth of that
process's peak RSS (``resource.getrusage(...).ru_maxrss``, so Python *and* HiGHS's native
memory) over its baseline after imports, input generation and a 4-step warm-up solve.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_FIELDS = ("build", "solve", "highs", "extract")


class _CountSolves(logging.Handler):
    """Counts the records of ``microgrid.dispatch.solve``: one per HiGHS call."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_case(key: str, *, repeat: int, mip_gap: float | None, time_limit_s: float) -> dict[str, Any]:
    """Plan case ``key`` ``repeat`` times in this process; return its figures (JSON-ready)."""
    sys.path.insert(0, str(HERE))
    import _sites

    import microgrid

    case = _sites.CASES[key]()
    site = microgrid.site_from_dict(case.site, f"case {key}")
    profiles = microgrid.profiles_from_frame(case.profiles, site, f"case {key}")
    warm = microgrid.profiles_from_frame(case.profiles.iloc[:4], site, f"case {key} (warm-up)")
    microgrid.plan(site, warm, mip_gap=0.01, time_limit_s=time_limit_s)
    counter = _CountSolves()
    solve_log = logging.getLogger("microgrid.dispatch.solve")
    solve_log.addHandler(counter)
    solve_log.setLevel(logging.DEBUG)
    baseline = _peak_mib()
    runs = []
    for _ in range(repeat):
        counter.count = 0
        started = time.perf_counter()
        plan = microgrid.plan(site, profiles, mip_gap=mip_gap, time_limit_s=time_limit_s)
        runs.append(
            {
                **{k: plan.timings[k] for k in _FIELDS},
                "wall": time.perf_counter() - started,
                "solves": counter.count,
                "status": plan.status.value,
                "gap": plan.mip_gap,
                "objective": plan.objective,
            }
        )
    return {
        "key": key,
        "title": case.title,
        "steps": case.steps,
        "batteries": len(site.batteries),
        "generators": len(site.generators),
        "gap_asked": site.control.mip_gap if mip_gap is None else mip_gap,
        "peak_mib": _peak_mib() - baseline,
        "runs": runs,
    }


def _run_worker(key: str, command: list[str], guard: float) -> dict[str, Any]:
    """Run a worker command: its last stdout line (JSON), or ``{"key", "error"}`` (failed, or past ``guard`` s)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=guard, check=False)
    except subprocess.TimeoutExpired:
        return {"key": key, "error": f"no answer within the {guard:.0f} s wall-clock guard"}
    if done.returncode != 0:
        return {"key": key, "error": (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _spawn(key: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one case in a fresh interpreter (clean peak-RSS baseline), guarding the wall clock."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", key, "--repeat", str(args.repeat)]
    command += ["--time-limit", str(args.time_limit)]
    if args.mip_gap is not None:
        command += ["--mip-gap", str(args.mip_gap)]
    guard = args.repeat * (2 * args.time_limit + 30) + 60  # HiGHS may overrun its limit inside presolve
    return _run_worker(key, command, guard)


def _row(res: dict[str, Any]) -> list[str]:
    if "error" in res:
        return [res["key"], *["—"] * (len(_HEAD) - 2), f"ERROR: {res['error']}"]
    runs = res["runs"]
    med = {k: statistics.median(r[k] for r in runs) for k in _FIELDS}
    overhead = (med["build"] + med["solve"] - med["highs"] + med["extract"]) / max(med["highs"], 1e-9)
    last = runs[-1]
    statuses = sorted({r["status"] for r in runs})
    return [
        res["key"],
        str(res["steps"]),
        f"{res['batteries']}+{res['generators']}",
        *(f"{med[k]:.3f}" for k in _FIELDS),
        f"{100 * overhead:.1f}",
        "/".join(str(n) for n in sorted({r["solves"] for r in runs})),
        ",".join(statuses),
        f"{last['gap']:.2e} ({res['gap_asked']:g})",
        f"{last['objective']:.2f}",
        f"{res['peak_mib']:.0f}",
        res["title"],
    ]


_HEAD = ["case", "T", "B+G", "build s", "solve s", "highs s", "extract s", "py%", "solves", "status", "gap (asked)"]
_HEAD += ["objective", "peak MiB", "what"]


def _table(rows: list[list[str]], head: list[str] | None = None) -> str:
    """Right-aligned columns, the last one (free text) left-aligned."""
    head = _HEAD if head is None else head
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    last = len(head) - 1
    return "\n".join(
        "  ".join(c if i == last else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [head, *rows]
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _header(args: argparse.Namespace, keys: list[str]) -> str:
    gap = "site's control.mip_gap" if args.mip_gap is None else f"{args.mip_gap:g}"
    return "\n".join(
        [
            f"microgrid plan benchmark: cases {', '.join(keys)}; {args.repeat} run(s) per case, median timings",
            f"command: python benchmarks/plan.py {' '.join(sys.argv[1:])}".rstrip(),
            f"machine: {os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}, "
            f"pyomo {version('pyomo')}, highspy {version('highspy')}; HiGHS threads: its default; "
            f"load average at start: {os.getloadavg()[0]:.2f}",
            f"mip_gap: {gap}; HiGHS time_limit: {args.time_limit:g} s per plan (every case)",
            "peak MiB: ru_maxrss growth of a fresh worker process over its post-warm-up baseline (Python + HiGHS)",
            "py% = (build + solve - highs + extract) / highs",
        ]
    )


def _spawn_suite(key: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run suite case ``key`` (both formulations) in a fresh interpreter, guarding the wall clock."""
    command = [sys.executable, str(Path(__file__).resolve()), "--suite-worker", key]
    command += ["--time-limit", str(args.time_limit), "--mip-gap", str(args.mip_gap)]
    guard = 4 * args.time_limit + 120  # two solves, each may overrun its limit inside presolve
    return _run_worker(key, command, guard)


def _run_suite(args: argparse.Namespace) -> int:
    """``--suite``: every (or each ``--suite-case``) generated case, one worker each; the table, the ratios."""
    import _suite

    keys = args.suite_case or [c.key for c in _suite.SUITE]
    if unknown := [k for k in keys if k not in _suite.BY_KEY]:
        print(f"--suite-case: no case {', '.join(unknown)} (cases: {', '.join(_suite.BY_KEY)})", file=sys.stderr)
        return 2
    header = _header(args, keys).replace("plan benchmark", "plan suite (vs the straightforward model)")
    header = header.replace(f"; {args.repeat} run(s) per case, median timings", "")
    lines = [line for line in header.splitlines() if not line.startswith(("peak MiB", "py% ="))]
    lines.append("py s = build + hand-off + read-back; wall = py + HiGHS; ratio = plan's wall / straightforward wall")
    print("\n".join(lines), flush=True)
    results = []
    for key in keys:
        results.append(_spawn_suite(key, args))
        print(f"  {key} done", file=sys.stderr, flush=True)
    print(_table([_suite.row(r) for r in results], _suite.HEAD))
    print(_suite.summary(results))
    return 0 if all(r.get("agree") in ("yes", "bounds") for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: case a only, gap 0.01")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="runs per case (median timings)")
    parser.add_argument("--case", action="append", choices=("a", "b", "c"), help="only these cases")
    parser.add_argument("--mip-gap", type=float, default=None, help="override the site's gap (0.001)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="HiGHS time limit per plan [s]")
    parser.add_argument("--worker", choices=("a", "b", "c"), help=argparse.SUPPRESS)
    parser.add_argument("--suite", action="store_true", help="generated cases against the straightforward model")
    parser.add_argument("--suite-case", nargs="+", metavar="KEY", help="only these suite cases (s01 …)")
    parser.add_argument("--suite-worker", metavar="KEY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    if args.suite or args.suite_worker:
        args.mip_gap = 0.001 if args.mip_gap is None else args.mip_gap
    if args.suite_worker:
        import _suite

        print(json.dumps(_suite.run_suite_case(args.suite_worker, mip_gap=args.mip_gap, time_limit_s=args.time_limit)))
        return 0
    if args.suite:
        return _run_suite(args)
    if args.repeat < 1:
        parser.error("--repeat must be ≥ 1")
    if args.worker:
        result = run_case(args.worker, repeat=args.repeat, mip_gap=args.mip_gap, time_limit_s=args.time_limit)
        print(json.dumps(result))
        return 0
    if args.quick:
        args.mip_gap = 0.01 if args.mip_gap is None else args.mip_gap
    keys = ["a"] if args.quick else (args.case or ["a", "b", "c"])
    print(_header(args, keys), flush=True)
    results = [_spawn(key, args) for key in keys]
    print(_table([_row(r) for r in results]))
    if args.repeat > 1:
        for res in results:
            if "runs" in res:
                print(f"HiGHS s per run, case {res['key']}: " + ", ".join(f"{r['highs']:.3f}" for r in res["runs"]))
    ok = all("runs" in r and all(run["status"] == "optimal" for run in r["runs"]) for r in results)
    return 0 if ok or not args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
