"""The operators' history file on the command line: ``--store``, where it is, opening it read-only, and
showing what it holds safely (``run``, ``status``, ``history``, ``override``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from microgrid.cli.common import EXIT_BAD_INPUT, fail

__all__ = ["DEFAULT_STORE", "MODES", "StoreOpt", "open_store", "printable", "store_path"]

DEFAULT_STORE = "microgrid-history.sqlite"
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help=f"History file (SQLite); default $MICROGRID_STORE or ./{DEFAULT_STORE}."),
]
MODES = ("auto", "manual", "safe", "dry-run")


def store_path(store: Path | None) -> Path:
    """The history file (``--store``, else ``$MICROGRID_STORE``, else the default); exit 2 when the path is a
    folder or a file that is not SQLite (a history is never written over something else)."""
    path = store or Path(os.environ.get("MICROGRID_STORE", DEFAULT_STORE))
    if path.is_dir():
        raise fail(EXIT_BAD_INPUT, f"{path}: a folder, not a history file (--store names the SQLite file)")
    if path.is_file() and path.stat().st_size > 0:
        try:
            with path.open("rb") as head:
                magic = head.read(16)
        except OSError as exc:
            raise fail(EXIT_BAD_INPUT, f"{path}: cannot read the history: {exc}") from None
        if magic != b"SQLite format 3\x00":
            raise fail(EXIT_BAD_INPUT, f"{path}: not a microgrid history (not an SQLite file)")
    return path


def open_store(store: Path | None) -> Any:
    from microgrid.store import Store, StoreError

    path = store_path(store)
    if not path.exists():
        raise fail(EXIT_BAD_INPUT, f"{path}: no history yet (start `microgrid run`, or pass --store)")
    try:
        return Store(path, readonly=True)
    except StoreError as exc:
        raise fail(EXIT_BAD_INPUT, f"{path}: {exc}") from None


def printable(value: object) -> object:
    """A text with its control characters shown as escapes (``\\x1b``), so a record cannot drive the
    operator's terminal; Cyrillic and other printable text is left as it is."""
    if not isinstance(value, str):
        return value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
