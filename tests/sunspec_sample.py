"""A SunSpec storage device (models 1, 124, 802) shared by the simulator and scan tests (SunSpec units)."""

from __future__ import annotations

from typing import Any

COMMON: dict[str, Any] = {"Mn": "Acme Storage", "Md": "B-100", "SN": "SN0042", "DA": 1}
STORAGE: dict[str, Any] = {"WChaMax": 100_000, "ChaState": 65.5, "InWRte": -12.5, "ChaSt": 3, "InOutWRte_RvrtTms": 60}
BATTERY: dict[str, Any] = {
    "SoC": 65.5,
    "SoH": 97,
    "W": -2500,
    "V": 51.2,
    "A": -48.8,
    "Hb": 7,
    "NCyc": 123_456,
    "State": 3,
}
MODELS: list[tuple[int, dict[str, Any]]] = [(1, COMMON), (124, STORAGE), (802, BATTERY)]
