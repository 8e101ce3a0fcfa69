"""Reading the project's CSV files with one problem format: the file, the line, the column, why.

Every CSV the project reads (profiles, external PV forecasts, price files) goes through
:func:`read_text_frame` (text cells, a checked header, rows as long as the header; optional ``#``
comment lines) and the checks below, which report into one :class:`Problems` per file; the problems
are raised together as a :class:`~microgrid.errors.ProfileError` naming the file and listing each
problem as ``line N, column 'c': why``. Line numbers are the file's own (header = line 1, blank and
comment lines counted). The outage-schedule reader (CSV and JSON files, folders of them) reports
through the same :class:`Problems`, raising its own error class; every ISO 8601 time in an input
file is read by :func:`parse_time`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from microgrid.errors import InputError, ProfileError

if TYPE_CHECKING:  # numpy and pandas load with the first CSV: an outage schedule (`microgrid validate`) needs neither
    import numpy as np
    import pandas as pd

__all__ = [
    "MAX_LISTED",
    "MAX_MAGNITUDE",
    "Problems",
    "check_duplicates",
    "check_spacing",
    "numeric",
    "parse_time",
    "parse_timestamps",
    "read_text_frame",
]

MAX_LISTED = 25
"""At most this many problems are listed (the rest counted)."""

MAX_MAGNITUDE = 1e9
"""No power [kW] or price [currency/kWh] in a profile is beyond this (1 TW): a 1e308 kW load reached
HiGHS, whose numerics then failed ("HiGHS failed", exit 3) instead of the cell being named."""

_EARLIEST, _LATEST = datetime(1678, 1, 1, tzinfo=UTC), datetime(2262, 1, 1, tzinfo=UTC)  # pandas' ns range


class Problems:
    """Collects the problems of one file or folder (``source``); raises them all at once as ``error``.

    ``lines``: the file line of each data row, when :func:`read_text_frame` dropped blank or comment
    lines (otherwise row r is on line r + 2, after the header). ``hidden``: problems counted but not
    in ``items`` (a folder's file whose own list was already cut short).
    """

    def __init__(self, source: str, error: type[InputError] = ProfileError) -> None:
        self.source = source
        self.error = error
        self.items: list[str] = []
        self.lines: list[int] | None = None
        self.hidden = 0

    def at(self, row: int) -> str:
        """``"line N"`` of data row ``row`` (0-based)."""
        return f"line {self.lines[row] if self.lines is not None else row + 2}"

    def add(self, message: str) -> None:
        self.items.append(message)

    def fail(self, message: str) -> NoReturn:
        """Add ``message`` and raise everything collected."""
        self.items.append(message)
        self.raise_if_any()
        raise AssertionError("unreachable")  # pragma: no cover

    def raise_if_any(self) -> None:
        """Raise ``error`` with every problem so far (at most :data:`MAX_LISTED` listed, the rest counted)."""
        if self.items:
            total = len(self.items) + self.hidden
            shown = self.items[:MAX_LISTED]
            if total > MAX_LISTED:
                shown.append(f"... and {total - MAX_LISTED} more")
            raise self.error(self.source, shown, total=total)


def read_text_frame(path: Path, problems: Problems, *, comments: bool = False) -> pd.DataFrame:
    """The CSV at ``path`` as a frame of stripped text cells (nothing converted).

    The header must be the first line (the first that is not a ``#`` comment with ``comments``);
    every row must have as many cells as the header (pandas would otherwise shift a row with an extra
    cell into an index); blank lines are skipped. Unreadable files, duplicate column names and short
    or long rows are problems, raised at once.
    """
    import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.fail(f"cannot read file: {exc}")
    kept = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not (comments and line.lstrip().startswith("#"))
    ]
    if not kept or (kept[0][0] != 1 and not comments):
        problems.fail("line 1: empty; the header (column names) must be on line 1")
    try:
        rows = csv.reader((line for _, line in kept), skipinitialspace=True)  # as pandas reads it below
        header = [c.strip() for c in next(rows, [])]
        check_duplicates(header, problems)
        for (number, _), cells in zip(kept[1:], rows, strict=False):
            if len(cells) != len(header):
                problems.add(f"line {number}: {len(cells)} cells, but the header has {len(header)}")
    except csv.Error as exc:
        problems.fail(f"not a readable CSV: {exc}")
    problems.raise_if_any()
    problems.lines = [number for number, _ in kept[1:]]
    try:
        body = "\n".join(line for _, line in kept)
        frame = pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        problems.fail(f"not a readable CSV: {exc}")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def check_duplicates(columns: list[str], problems: Problems) -> None:
    """A column name given twice is a problem (line 1)."""
    for column in sorted({c for c in columns if columns.count(c) > 1}):
        problems.add(f"line 1: column {column!r} appears more than once")


def parse_time(text: object) -> datetime | None:
    """``text`` (surrounding blanks ignored) as an ISO 8601 time, with its UTC offset if it has one
    (naive otherwise); None when it is not a string or not ISO 8601. The one reader of times in input files."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def parse_timestamps(raw: pd.Series, problems: Problems) -> pd.DatetimeIndex | None:
    """ISO 8601 times with a UTC offset, in pandas' range, as a UTC index; None when any is not."""
    import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

    stamps: list[datetime] = []
    for row, text in enumerate(raw):
        if (stamp := parse_time(text)) is None:
            problems.add(f"{problems.at(row)}, column 'timestamp': not an ISO 8601 time, got {text!r}")
            continue
        if stamp.tzinfo is None or stamp.utcoffset() is None:
            problems.add(f"{problems.at(row)}, column 'timestamp': needs a UTC offset (e.g. +02:00), got {text!r}")
            continue
        if not _EARLIEST <= stamp <= _LATEST:
            problems.add(f"{problems.at(row)}, column 'timestamp': must lie in the years 1678-2261, got {text!r}")
            continue
        stamps.append(stamp)
    if len(stamps) != len(raw):
        return None
    return pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))


def check_spacing(index: pd.DatetimeIndex, problems: Problems) -> float | None:
    """The uniform step of ``index`` [h]; None (and problems) when it has one row, goes back or is uneven."""
    import numpy as np  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

    if len(index) < 2:
        problems.add(f"needs at least 2 rows to define the step length, got {len(index)}")
        return None
    deltas = np.diff(index.as_unit("ns").asi8)
    step_ns = int(deltas[0])
    if step_ns <= 0:
        problems.add(f"{problems.at(1)}, column 'timestamp': times must increase, got {index[1]} after {index[0]}")
        return None
    for row in np.flatnonzero(deltas != step_ns):
        got = timedelta(microseconds=int(deltas[row]) / 1000)
        problems.add(
            f"{problems.at(int(row) + 1)}, column 'timestamp': steps must be uniform "
            f"({timedelta(microseconds=step_ns / 1000)}), got {got} after the previous row"
        )
    return step_ns / 3.6e12


def numeric(raw: pd.Series, column: str, problems: Problems, *, lower: float | None) -> np.ndarray:
    """The cells of ``column`` as finite floats, at least ``lower`` and within ±:data:`MAX_MAGNITUDE`."""
    import numpy as np  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)
    import pandas as pd  # noqa: PLC0415

    values = pd.to_numeric(raw.str.strip(), errors="coerce").to_numpy(dtype=float)
    for row in np.flatnonzero(~np.isfinite(values)):
        problems.add(f"{problems.at(int(row))}, column {column!r}: not a finite number, got {raw.iloc[row]!r}")
    if lower is not None:
        for row in np.flatnonzero(values < lower):
            problems.add(f"{problems.at(int(row))}, column {column!r}: must be ≥ {lower:g}, got {raw.iloc[row]!r}")
    for row in np.flatnonzero(np.isfinite(values) & (np.abs(values) > MAX_MAGNITUDE)):
        problems.add(
            f"{problems.at(int(row))}, column {column!r}: beyond ±{MAX_MAGNITUDE:g}, not a plausible kW or price, "
            f"got {raw.iloc[row]!r}"
        )
    return values
