"""Shared fixtures: paths of the shipped site and sample data, and a tiny-site builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSPITAL = ROOT / "models" / "sites" / "hospital.yaml"
WINTER = ROOT / "data" / "hospital-winter-day.csv"
SUMMER = ROOT / "data" / "hospital-summer-day.csv"
STATE = ROOT / "data" / "hospital-state.json"


@pytest.fixture
def hospital_path() -> Path:
    return HOSPITAL


def tiny_site(**sections: Any) -> dict[str, Any]:
    """A minimal valid site dict; pass sections to add or replace."""
    base: dict[str, Any] = {"site": {"name": "tiny", "timezone": "UTC", "currency": "UAH"}}
    base.update(sections)
    return base
