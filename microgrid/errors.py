"""The exception tree of microgrid.

Every error a user can cause carries the place it happened (file, key path, row,
column) in its message, so the CLI can print it verbatim and exit with status 2.
"""

from __future__ import annotations

from collections.abc import Sequence


class MicrogridError(Exception):
    """Base class of every error microgrid raises on purpose."""


class InputError(MicrogridError):
    """Bad user input. ``problems`` lists every problem found, one line each."""

    def __init__(self, source: str, problems: Sequence[str], total: int | None = None) -> None:
        self.source = source
        self.problems = list(problems) or ["invalid input"]
        self.total = total if total is not None else len(self.problems)
        """How many problems there are (the list may be cut short with a "... and N more" line)."""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {self.total} problem(s)\n{lines}")


class ConfigError(InputError):
    """A site file that is unreadable or breaks the site-file contract."""


class ProfileError(InputError):
    """A profiles CSV that is unreadable or breaks the profiles contract."""


class StateError(InputError):
    """A state JSON that is unreadable or breaks the state contract."""


class DeviceError(MicrogridError):
    """A device that does not answer, answers garbage, or answers with a Modbus exception."""


class SolveError(MicrogridError):
    """The solver failed or returned a plan that does not pass the residual checks."""


class InfeasibleError(SolveError):
    """No feasible plan exists (or none was found within the time limit)."""
