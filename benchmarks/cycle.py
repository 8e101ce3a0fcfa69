"""Control-cycle benchmark: latency split by phase, and the controller's memory over many cycles.

    python benchmarks/cycle.py                  # 30 cycles with real solves + 1,000-cycle memory run
    python benchmarks/cycle.py --quick          # smoke: 3 cycles at gap 0.01 + 100-cycle memory run
    python benchmarks/cycle.py --cycles 96 --memory-cycles 2000

The shipped hospital (96 × 15 min horizon) is served by the simulated site over Modbus TCP on
127.0.0.1 (free ports, ``speed=None``: the plant moves only when told) and driven by
:class:`microgrid.control.Controller` on the simulated clock, from local midnight of the winter day.

**Latency** (``--cycles``, default 30): each cycle solves for real at the site's settings (gap
0.001, 20 s limit); between cycles the plant runs 15 min in 30 s chunks with the keep-alive after
each (not timed). Per phase: median and p95 [ms]; ``solve`` also split into the optimizer's own
``build`` (pyomo), ``highs`` and ``extract``. Targets (issue): the non-solver phases (read,
estimate, forecast, setpoints, check, write) ≤ 10 % of the solve, and a cycle far inside the
1-minute interval of a fast site.

**Memory** (``--memory-cycles``, default 1,000): the solve is **stubbed** (a constant plan built
from the forecast: no HiGHS, so a thousand cycles take about a minute; the real solve's memory
is ``benchmarks/plan.py``'s business); everything else is the real cycle: TCP reads and writes,
estimate, rolling forecast, fallback chain, safety, keep-alive. Between cycles the plant runs
15 min in 60 s physics steps, with one keep-alive. Reported at five checkpoints: the Python heap
traced by ``tracemalloc`` (after a ``gc.collect()``) and the process RSS. Flat = growth from the
first quarter's checkpoint (after warm-up) to the last < 5 %.

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import microgrid.sim.server as sim_server
from microgrid.control import Controller
from microgrid.dispatch import DispatchInputs, optimize
from microgrid.plans import Plan, SolveStatus
from microgrid.profiles import Profiles, read_profiles
from microgrid.sim.ports import on_free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.site import Site, read_site
from microgrid.telemetry.wiring import connect

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("read", "estimate", "forecast", "solve", "setpoints", "check", "write")
NON_SOLVER = tuple(p for p in PHASES if p != "solve")


def hospital(mip_gap: float | None = None) -> tuple[Site, Profiles]:
    """The shipped hospital on free loopback ports (shared ports stay shared), and its winter day."""
    site = on_free_ports(read_site(ROOT / "models/sites/hospital.yaml"))
    if mip_gap is not None:
        site = site.model_copy(update={"control": site.control.model_copy(update={"mip_gap": mip_gap})})
    return site, read_profiles(ROOT / "data/hospital-winter-day.csv", site)


def stub_plan(inputs: DispatchInputs) -> Plan:
    """A plan without a solve: batteries idle, gensets off, every load served, PV as forecast."""
    p, site = inputs.profiles, inputs.site
    frame = pd.DataFrame(index=p.index)
    for b in site.batteries:
        frame[f"battery.{b.id}.charge_kw"] = frame[f"battery.{b.id}.discharge_kw"] = 0.0
        frame[f"battery.{b.id}.soc"] = inputs.state.soc.get(b.id, b.initial_soc)
    for g in site.generators:
        for column in ("kw", "on", "fuel"):
            frame[f"generator.{g.id}.{column}"] = 0.0
    for a in site.pv:
        frame[f"pv.{a.id}.kw"] = p.pv_kw[a.id].to_numpy()
    for t in site.loads:
        frame[f"load.{t.id}.served_kw"] = p.load_kw[t.id].to_numpy()
        frame[f"load.{t.id}.shed_kw"] = 0.0
    frame["grid.import_kw"] = np.maximum(p.load_kw.sum(axis=1).to_numpy() - p.pv_kw.sum(axis=1).to_numpy(), 0.0)
    frame["grid.export_kw"] = 0.0
    return Plan(frame, site, p, inputs.state, SolveStatus.OPTIMAL, 0.0, 0.0, 0.0)


@dataclass
class Rig:
    sim: SimulatedSite
    ctl: Controller
    devices: Any
    optimizer_timings: list[dict[str, float]] = field(default_factory=list)

    async def step(self, seconds: float, chunk: float) -> None:
        left = seconds
        while left > 1e-9:
            dt = min(chunk, left)
            self.sim.advance(dt)
            left -= dt
            await self.ctl.keepalive()


async def _with_rig(site: Site, profiles: Profiles, optimizer: Any, body: Any) -> Any:
    async with SimulatedSite(site, profiles, speed=None) as sim:
        devices = connect(site)

        def seconds() -> float:  # the plant's clock is a new Timestamp after every step: look it up each time
            return sim.plant.clock.timestamp()

        def now() -> datetime:
            return sim.plant.clock.to_pydatetime()

        for device in devices.devices.values():
            device.clock = seconds
        ctl = Controller(site, devices, profiles, clock=now, optimizer=optimizer)
        try:
            return await body(Rig(sim, ctl, devices))
        finally:
            devices.close()


# -- latency ------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _latency_body(rig: Rig, cycles: int) -> dict[str, Any]:
    rows: list[dict[str, float]] = []
    sources: Counter[str] = Counter()
    for _ in range(cycles):
        started = time.perf_counter()
        report = await rig.ctl.cycle()
        total = time.perf_counter() - started
        sources[report.source if report.source != "plan" else f"plan ({report.reason})"] += 1
        row = {k: v * 1000 for k, v in report.phases_s.items()} | {"cycle": total * 1000}
        if report.plan is not None:
            row |= {f"solve.{k}": report.plan.timings.get(k, 0.0) * 1000 for k in ("build", "highs", "extract")}
        rows.append(row)
        await rig.step(900, 30)
    return {"rows": rows, "sources": sources}


def latency(cycles: int, mip_gap: float | None) -> tuple[str, bool]:
    site, profiles = hospital(mip_gap)
    result = asyncio.run(_with_rig(site, profiles, optimize, lambda rig: _latency_body(rig, cycles)))
    rows: list[dict[str, float]] = result["rows"]
    names = [*PHASES[:4], "solve.build", "solve.highs", "solve.extract", *PHASES[4:], "cycle"]
    lines = [
        f"latency: {cycles} cycles, hospital, horizon {round(site.control.horizon / site.control.interval)} × "
        f"{site.control.interval.total_seconds() / 60:g} min, gap {site.control.mip_gap:g}, "
        f"time limit {site.control.time_limit_s:g} s; sources: "
        + ", ".join(f"{k} × {v}" for k, v in sorted(result["sources"].items())),
        f"{'phase':<16}{'median ms':>11}{'p95 ms':>10}{'max ms':>10}",
    ]
    for name in names:
        values = [r[name] for r in rows if name in r]
        if not values:
            continue
        label = f"  {name.split('.')[1]} (in solve)" if name.startswith("solve.") else name
        lines.append(f"{label:<16}{statistics.median(values):>11.1f}{_pct(values, 0.95):>10.1f}{max(values):>10.1f}")
    non_solver = [sum(r[p] for p in NON_SOLVER) for r in rows]
    solve = [r["solve"] for r in rows]
    shares = [n / max(s, 1e-9) for n, s in zip(non_solver, solve, strict=True)]
    share_of_medians = statistics.median(non_solver) / max(statistics.median(solve), 1e-9)
    worst = max(r["cycle"] for r in rows) / 1000
    ok_share, ok_interval = share_of_medians <= 0.10, worst <= 30.0
    lines += [
        f"non-solver phases: median {statistics.median(non_solver):.1f} ms = {100 * share_of_medians:.1f} % of the "
        f"median solve (per cycle: median {100 * statistics.median(shares):.1f} %, "
        f"p95 {100 * _pct(shares, 0.95):.1f} %) — target ≤ 10 %: {'PASS' if ok_share else 'FAIL'}",
        f"slowest cycle: {worst:.2f} s = {100 * worst / 60:.1f} % of a 1-minute interval "
        f"({100 * worst / site.control.interval.total_seconds():.2f} % of the site's 15-min one)"
        f" — target far inside (≤ 30 s): {'PASS' if ok_interval else 'FAIL'}",
    ]
    return "\n".join(lines), ok_share and ok_interval


# -- memory -------------------------------------------------------------------------------------


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _memory_body(rig: Rig, cycles: int, checkpoints: list[int]) -> list[tuple[int, float, float, float]]:
    out = []
    started = time.perf_counter()
    for i in range(1, cycles + 1):
        await rig.ctl.cycle()
        rig.sim.advance(450)
        await rig.ctl.keepalive()
        rig.sim.advance(450)
        if i in checkpoints:
            gc.collect()
            traced, _peak = tracemalloc.get_traced_memory()
            out.append((i, traced / 2**20, _rss_mib(), time.perf_counter() - started))
    return out


def memory(cycles: int) -> tuple[str, bool]:
    site, profiles = hospital()
    checkpoints = sorted({1, *(round(cycles * k / 4) for k in (1, 2, 3, 4))})
    sim_server.MAX_SUBSTEP_S = 60.0  # coarse physics: the plant's cost is not what is measured here
    tracemalloc.start()
    try:
        points = asyncio.run(_with_rig(site, profiles, stub_plan, lambda rig: _memory_body(rig, cycles, checkpoints)))
    finally:
        tracemalloc.stop()
    lines = [
        f"memory: {cycles} cycles, solve stubbed (constant plan), TCP + estimate + forecast + safety + keep-alive real",
        f"{'cycle':>6}{'traced MiB':>12}{'RSS MiB':>10}{'elapsed s':>11}",
    ]
    lines += [f"{i:>6}{traced:>12.2f}{rss:>10.1f}{elapsed:>11.1f}" for i, traced, rss, elapsed in points]
    base, last = points[1] if len(points) > 2 else points[0], points[-1]
    grow_traced = last[1] / base[1] - 1
    grow_rss = last[2] / base[2] - 1
    ok = grow_traced < 0.05 and grow_rss < 0.05
    lines.append(
        f"growth cycle {base[0]} → {last[0]}: traced {100 * grow_traced:+.1f} %, RSS {100 * grow_rss:+.1f} % "
        f"(from cycle 1: traced {100 * (last[1] / points[0][1] - 1):+.1f} %, "
        f"RSS {100 * (last[2] / points[0][2] - 1):+.1f} %) — target flat (< 5 %): {'PASS' if ok else 'FAIL'}"
    )
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke: 3 cycles at gap 0.01, 100-cycle memory run")
    parser.add_argument("--cycles", type=int, default=None, help="cycles with real solves (default 30)")
    parser.add_argument("--memory-cycles", type=int, default=None, help="cycles of the memory run (default 1000)")
    parser.add_argument("--mip-gap", type=float, default=None, help="override the site's gap (0.001)")
    args = parser.parse_args(argv)
    cycles = args.cycles or (3 if args.quick else 30)
    memory_cycles = args.memory_cycles or (100 if args.quick else 1000)
    gap = args.mip_gap if args.mip_gap is not None else (0.01 if args.quick else None)
    logging.getLogger("microgrid").setLevel(logging.WARNING)
    print(f"microgrid cycle benchmark — command: python benchmarks/cycle.py {' '.join(sys.argv[1:])}".rstrip())
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    text, ok_latency = latency(cycles, gap)
    print(text, flush=True)
    text, ok_memory = memory(memory_cycles)
    print(text)
    return 0 if ok_latency and ok_memory else 1


if __name__ == "__main__":
    sys.exit(main())
