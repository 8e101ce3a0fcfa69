"""THE CYCLE: orchestration of the control loop, no maths and no register arithmetic.

The names below load on first use (PEP 562): ``microgrid status`` reads ``microgrid.control.alarms``
without importing the cycle, and with it pyomo, pandas and pymodbus (issue 14).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from microgrid.control.cycle import Controller, CycleReport, Mode
    from microgrid.control.decisions import Decision, rules
    from microgrid.control.estimate import Estimate, Estimator
    from microgrid.control.safety import SafetyConfig, check

_LAZY = {
    "Controller": "microgrid.control.cycle",
    "CycleReport": "microgrid.control.cycle",
    "Mode": "microgrid.control.cycle",
    "Decision": "microgrid.control.decisions",
    "rules": "microgrid.control.decisions",
    "Estimate": "microgrid.control.estimate",
    "Estimator": "microgrid.control.estimate",
    "SafetyConfig": "microgrid.control.safety",
    "check": "microgrid.control.safety",
}


def __getattr__(name: str) -> Any:
    if (module := _LAZY.get(name)) is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'microgrid.control' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["Controller", "CycleReport", "Decision", "Estimate", "Estimator", "Mode", "SafetyConfig", "check", "rules"]
