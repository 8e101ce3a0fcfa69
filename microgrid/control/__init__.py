"""THE CYCLE: orchestration of the control loop, no maths and no register arithmetic."""

from microgrid.control.cycle import Controller, CycleReport, Mode
from microgrid.control.decisions import Decision, rules
from microgrid.control.estimate import Estimate, Estimator
from microgrid.control.safety import SafetyConfig, check

__all__ = ["Controller", "CycleReport", "Decision", "Estimate", "Estimator", "Mode", "SafetyConfig", "check", "rules"]
