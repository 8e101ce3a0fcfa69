"""What a drill measured and its verdict: one row per criterion, pass or fail.

Measures (:class:`Measures`): faults injected; unsafe writes (:func:`microgrid.sim.truth.unsafe_write`
on every write a device accepted, against the plant's truth at that moment); kWh of the most
important and the second tier not served (tripped by the plant, or behind a relay the controller
opened); records lost (cycles run but not in the store); cycles missed (intervals whose cycle did
not complete); time to fallback (from the first event that starts the fallback clock to the first
cycle whose report shows it: for a device fault that device's health not ``ok``, for a solver
fault a cycle not on a fresh plan, otherwise a source other than ``plan``/``manual``, any device
not ``ok`` or the grid unknown); operator actions that were not applied or refused as the drill
expected; minutes with a battery's true SOC below its floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from microgrid.planning.drills.model import Criteria, Drill
from microgrid.sim.truth import TruthRow, WriteRecord

__all__ = ["CriterionResult", "DrillResult", "Measures", "judge"]


@dataclass
class Measures:
    """What a drill run measured (module docstring)."""

    faults_injected: int = 0
    unsafe: list[tuple[WriteRecord, str]] = field(default_factory=list)
    writes: int = 0
    critical_unserved_kwh: float = 0.0
    essential_unserved_kwh: float = 0.0
    cycles_expected: int = 0
    cycles_run: int = 0
    cycles_recorded: int = 0
    time_to_fallback: timedelta | None = None
    fallback_clock_started: bool = False
    operator_unexpected: list[str] = field(default_factory=list)
    operator_actions: int = 0
    below_floor_min: float = 0.0
    """Minutes of the truth log with a battery's true SOC below its ``soc_min`` by more than
    :data:`~microgrid.sim.truth.SOC_TOLERANCE` (the grid-forming battery carries the balance islanded,
    whatever its setpoint: this is where a late genset start shows)."""
    lowest_soc: dict[str, float] = field(default_factory=dict)
    """Each battery's lowest true SOC during the drill."""
    sources: dict[str, int] = field(default_factory=dict)
    """How many cycles each setpoint source decided (plan, previous_plan, rules, manual, autonomous)."""
    timeline: list[str] = field(default_factory=list)
    """One line per cycle: its time, source, reason and every device not ``ok``."""

    @property
    def records_lost(self) -> int:
        """Cycles run that the store does not hold."""
        return self.cycles_run - self.cycles_recorded

    @property
    def cycles_missed(self) -> int:
        """Intervals without a completed cycle."""
        return self.cycles_expected - self.cycles_run


@dataclass(frozen=True)
class CriterionResult:
    """One criterion: what was measured, the limit, and whether it held."""

    name: str
    measured: str
    limit: str
    ok: bool


@dataclass
class DrillResult:
    """A drill run: its measures, the truth log, the criteria and the verdict."""

    path: Path
    drill: Drill
    duration: timedelta
    measures: Measures
    truth: list[TruthRow]
    criteria: list[CriterionResult]
    wall_s: float

    @property
    def passed(self) -> bool:
        """Every criterion held."""
        return all(c.ok for c in self.criteria)

    @property
    def as_expected(self) -> bool:
        """Passed, or failed as its ``expect: fail`` says (a known defect)."""
        return self.passed == (self.drill.expect == "pass")

    @property
    def verdict(self) -> str:
        """PASS, FAIL, XFAIL (failed as expected) or XPASS (expected to fail, passed: the mark is stale)."""
        if self.drill.expect == "fail":
            return "XPASS" if self.passed else "XFAIL"
        return "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (``microgrid drill --json``)."""
        m = self.measures
        return {
            "drill": self.drill.name,
            "file": str(self.path),
            "verdict": self.verdict,
            "duration_h": self.duration / timedelta(hours=1),
            "wall_s": round(self.wall_s, 1),
            "faults_injected": m.faults_injected,
            "unsafe_writes": [{"time": w.time.isoformat(), "device": w.device, "why": why} for w, why in m.unsafe],
            "writes": m.writes,
            "critical_unserved_kwh": round(m.critical_unserved_kwh, 3),
            "essential_unserved_kwh": round(m.essential_unserved_kwh, 3),
            "records_lost": m.records_lost,
            "cycles_missed": m.cycles_missed,
            "below_floor_min": m.below_floor_min,
            "lowest_soc": {b: round(v, 4) for b, v in m.lowest_soc.items()},
            "time_to_fallback_min": None if m.time_to_fallback is None else m.time_to_fallback / timedelta(minutes=1),
            "sources": m.sources,
            "operator_unexpected": m.operator_unexpected,
            "timeline": m.timeline,
            "criteria": [c.__dict__ for c in self.criteria],
        }


def _max(name: str, measured: float, limit: float | None, unit: str = "") -> CriterionResult | None:
    if limit is None:
        return None
    shown = f"{measured:.1f}{unit}" if isinstance(measured, float) else f"{measured}{unit}"
    return CriterionResult(name, shown, f"≤ {limit:g}{unit}", measured <= limit + 1e-9)


def _fallback(m: Measures, limit: timedelta | None) -> CriterionResult | None:
    if limit is None:
        return None
    shown = "never" if m.time_to_fallback is None else f"{m.time_to_fallback / timedelta(minutes=1):g} min"
    if not m.fallback_clock_started:
        shown = "no fault"
    ok = m.time_to_fallback is not None and m.time_to_fallback <= limit
    return CriterionResult("time to fallback", shown, f"≤ {limit / timedelta(minutes=1):g} min", ok)


def judge(m: Measures, criteria: Criteria) -> list[CriterionResult]:
    """Each criterion the drill sets, held against ``m``."""
    rows = [
        _max("critical unserved", m.critical_unserved_kwh, criteria.critical_unserved_kwh, " kWh"),
        _max("essential unserved", m.essential_unserved_kwh, criteria.essential_unserved_kwh, " kWh"),
        _max("unsafe writes", len(m.unsafe), criteria.unsafe_writes),
        _max("records lost", m.records_lost, criteria.records_lost),
        _max("cycles missed", m.cycles_missed, criteria.cycles_missed),
        _max("below soc_min", m.below_floor_min, criteria.below_floor_min, " min"),
        _fallback(m, criteria.time_to_fallback),
    ]
    if m.operator_actions:
        wrong = len(m.operator_unexpected)
        rows.append(CriterionResult("operator actions as expected", f"{wrong} not", "0 not", wrong == 0))
    return [r for r in rows if r is not None]
