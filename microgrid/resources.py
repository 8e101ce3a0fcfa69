"""Files shipped with microgrid: register maps, sample sites and sample profiles.

In an installed wheel they are package data (``microgrid/models``, ``microgrid/data``); in a
source checkout (editable install) they are read from the tree (``models/``, ``data/``).
"""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path

from microgrid.errors import ConfigError

__all__ = ["shipped"]


def shipped(*parts: str) -> Traversable:
    """The shipped file or folder ``parts`` (e.g. ``"models", "sites", "hospital.yaml"``)."""
    packaged = importlib.resources.files("microgrid").joinpath(*parts)
    if packaged.is_file() or packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[1].joinpath(*parts)
    if source.exists():
        return source
    raise ConfigError("microgrid", [f"shipped file {'/'.join(parts)} is missing: reinstall microgrid with its data"])
