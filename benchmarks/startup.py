"""Start-up cost of the ``microgrid`` command: median wall time of light commands and what they import.

    python benchmarks/startup.py              # 5 runs per command, median wall time [s]
    python benchmarks/startup.py --runs 9

Each command runs as a fresh process (``microgrid`` next to this interpreter, else
``python -m microgrid``), so the figures include the interpreter's start and every import the
command makes; nothing is cached between runs except the OS's file cache (a first, discarded
run warms it). Also prints the heavy packages ``import microgrid.cli`` loads (none expected)
and the cumulative import time of ``microgrid.cli`` from ``python -X importtime``.
Targets (issue 14): ``validate`` < 0.5 s, ``plan --help`` < 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "numpy", "pyomo", "pvlib", "dask", "matplotlib", "highspy", "pymodbus", "pyarrow", "scipy")
COMMANDS = (
    ("--help",),
    ("plan", "--help"),
    ("validate", "models/sites/hospital.yaml"),
    ("status", "--help"),
)


def _microgrid() -> list[str]:
    """The ``microgrid`` script of this interpreter's environment, else ``python -m microgrid``."""
    script = Path(sys.executable).with_name("microgrid")
    if script.exists():
        return [str(script)]
    found = shutil.which("microgrid")
    return [found] if found else [sys.executable, "-m", "microgrid"]


def timed_s(command: list[str]) -> tuple[float, float]:
    """(wall, CPU = user + system) time [s] of one run of ``command`` (from the project root; output
    discarded; must exit 0). CPU time suffers less than wall time from other jobs on a shared machine."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)


def median_s(command: list[str], runs: int) -> tuple[float, float]:
    """Median (wall, CPU) time [s] of ``runs`` runs after one discarded warm-up run."""
    timed_s(command)
    runs_s = [timed_s(command) for _ in range(runs)]
    return statistics.median(w for w, _ in runs_s), statistics.median(c for _, c in runs_s)


def heavy_imports() -> list[str]:
    """The heavy top-level packages present in ``sys.modules`` after ``import microgrid.cli``."""
    probe = f"import sys, microgrid.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


def cli_import_s() -> float:
    """Cumulative import time [s] of ``microgrid.cli`` as ``python -X importtime`` reports it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import microgrid.cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "microgrid.cli":
            return int(parts[1]) / 1e6
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    args = parser.parse_args(argv)
    base = _microgrid()
    print(f"microgrid start-up: median of {args.runs} runs per command, wall and CPU time [s] of a fresh process")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average at start: {os.getloadavg()[0]:.2f}; command: {' '.join(base)}"
    )
    for command in COMMANDS:
        wall, cpu = median_s([*base, *command], args.runs)
        print(f"  microgrid {' '.join(command):<40} wall {wall:6.3f} s   CPU {cpu:6.3f} s")
    print(f"  import microgrid.cli (python -X importtime, cumulative) {cli_import_s():.3f} s")
    print(f"  heavy packages after import microgrid.cli: {', '.join(heavy_imports()) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
