"""The rows of the history and their encoding: tz-aware times as fixed-width UTC text, JSON, plan blobs."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads with the first plan frame: `microgrid status` and `override` need none (issue 14)
    import pandas as pd

OUTCOMES = frozenset({"written", "skipped", "refused", "mismatch", "unknown", "dry-run"})


def _ts(moment: datetime) -> str:
    """Encode a tz-aware datetime as fixed-width UTC ISO 8601 text; naive ones are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: microgrid keeps time in UTC, pass a tz-aware one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(obj: Any) -> Any:
    """JSON fallback: times as ISO text, numpy/pandas values via ``tolist()``, anything else as ``str``."""
    if isinstance(obj, datetime):
        return _ts(obj) if obj.tzinfo is not None else obj.isoformat()
    tolist = getattr(obj, "tolist", None)
    return tolist() if callable(tolist) else str(obj)


def _json(obj: Any) -> str:
    return json.dumps(obj, default=_plain, sort_keys=True)


@dataclass(frozen=True)
class TelemetryRow:
    """One sample: ``value`` in ``unit`` (``str`` for enumerations, ``None`` when unread)."""

    ts: datetime
    device: str
    point: str
    value: float | str | None
    unit: str | None
    quality: str

    def __post_init__(self) -> None:
        _ts(self.ts)


@dataclass(frozen=True)
class SetpointRow:
    """A setpoint the cycle meant to write, and what became of it (``why`` when not written)."""

    ts: datetime
    device: str
    point: str
    value: float | None
    outcome: str
    why: str = ""

    def __post_init__(self) -> None:
        _ts(self.ts)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"setpoint outcome {self.outcome!r} is not one of {sorted(OUTCOMES)}")


@dataclass(frozen=True)
class EventRow:
    """Something worth telling an operator: ``kind`` is 'fallback', 'mode', 'device', 'store', 'start'…"""

    ts: datetime
    kind: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _ts(self.ts)


@dataclass(frozen=True)
class PlanRow:
    """A solve: status, objective (currency), relative MIP gap, solve time [s] and its per-step frame.

    ``frame`` has a tz-aware DatetimeIndex of step starts (stored as UTC) and one column per quantity.
    """

    ts: datetime
    status: str
    objective: float | None
    mip_gap: float | None
    solve_seconds: float
    frame: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

        _ts(self.ts)
        if self.frame is not None and not (
            isinstance(self.frame.index, pd.DatetimeIndex) and self.frame.index.tz is not None
        ):
            raise ValueError("a plan frame needs a tz-aware DatetimeIndex of step starts")


@dataclass(frozen=True)
class CycleRow:
    """One control cycle: mode, where its setpoints came from, why, phase durations [s], summary.

    ``source`` is 'plan', 'previous_plan', 'rules', 'manual' or 'autonomous'; ``summary`` holds what
    ``microgrid status`` shows (state, plan summary, device health, autonomy…), JSON-serialisable.
    """

    ts: datetime
    mode: str
    source: str
    reason: str = ""
    phases_s: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _ts(self.ts)


@dataclass(frozen=True)
class _Batch:
    """The encoded rows of one record call; ``gap`` = (batches dropped just before it, first ts, last ts)."""

    cycle: tuple[Any, ...] | None
    rows: dict[str, list[tuple[Any, ...]]]
    gap: tuple[int, str, str] | None = None
    replaces: int | None = None
    """The id of the cycle row this batch's cycle supersedes (``Store.record_cycle``)."""

    @property
    def ts(self) -> str:
        if self.cycle is not None:
            return str(self.cycle[0])
        return next((str(rs[0][0]) for rs in self.rows.values() if rs), "")


def _encode_frame(frame: pd.DataFrame) -> bytes:
    import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

    index = pd.DatetimeIndex(frame.index)
    doc = {
        "index": [_ts(t) for t in index],
        "name": index.name,
        "columns": [str(c) for c in frame.columns],
        "data": [frame.iloc[:, i].tolist() for i in range(frame.shape[1])],
    }
    return zlib.compress(_json(doc).encode(), 6)


def _decode_frame(blob: bytes) -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

    doc = json.loads(zlib.decompress(blob))
    index = pd.DatetimeIndex(pd.to_datetime(doc["index"], utc=True, format="ISO8601"), name=doc["name"])
    return pd.DataFrame(dict(zip(doc["columns"], doc["data"], strict=True)), index=index)


def _num(v: float | None) -> float | None:
    """Numbers as float (numpy scalars too) so that binding them cannot fail later, in the backlog."""
    return None if v is None else float(v)


def _cycle(c: CycleRow) -> tuple[Any, ...]:
    return (_ts(c.ts), str(c.mode), str(c.source), str(c.reason), _json(c.phases_s), _json(c.summary))


def _sample(r: TelemetryRow) -> tuple[Any, ...]:
    number, text = (None, r.value) if isinstance(r.value, str) else (_num(r.value), None)
    unit = None if r.unit is None else str(r.unit)
    return (_ts(r.ts), str(r.device), str(r.point), number, text, unit, str(r.quality))


def _plan(p: PlanRow) -> tuple[Any, ...]:
    steps, blob = (None, None) if p.frame is None else (len(p.frame), _encode_frame(p.frame))
    return (_ts(p.ts), str(p.status), _num(p.objective), _num(p.mip_gap), float(p.solve_seconds), steps, blob)


def _encode(
    cycle: CycleRow | None,
    telemetry: Iterable[TelemetryRow],
    plan: PlanRow | None,
    setpoints: Iterable[SetpointRow],
    events: Iterable[EventRow],
) -> _Batch:
    """Encode the rows of one record call now, so the backlog holds plain tuples SQLite always accepts.

    Raises TypeError or ValueError for rows that cannot be encoded (a bug in the caller, not storage trouble).
    """
    rows = {
        "telemetry": [_sample(r) for r in telemetry],
        "plans": [] if plan is None else [_plan(plan)],
        "setpoints": [
            (_ts(s.ts), str(s.device), str(s.point), _num(s.value), s.outcome, str(s.why)) for s in setpoints
        ],
        "events": [(_ts(e.ts), str(e.kind), str(e.message), _json(e.detail)) for e in events],
    }
    return _Batch(None if cycle is None else _cycle(cycle), rows)
