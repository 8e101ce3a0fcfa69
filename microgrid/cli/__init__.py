"""The ``microgrid`` command: thin — parse, call the library, map errors to exit codes.

Exit codes: 0 success; 1 internal error; 2 bad input (site, profiles, state, register map,
arguments); 3 no feasible (or no trustworthy) plan; 4 a device did not answer or refused.
"""

from __future__ import annotations

import os
import sys

from microgrid.cli import centre, centre_demo, drill, edge, operate, override, planning, simulation
from microgrid.cli.common import EXIT_INTERNAL, app, err
from microgrid.errors import MicrogridError

__all__ = ["app", "centre", "centre_demo", "drill", "edge", "main", "operate", "override", "planning", "simulation"]


def main() -> None:
    """Entry point of the ``microgrid`` script."""
    try:
        app()
    except MicrogridError as exc:  # anything not mapped above is still a clear one-liner
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_INTERNAL)
    except Exception as exc:
        if os.environ.get("MICROGRID_DEBUG"):
            raise
        err.print(
            f"internal error: {type(exc).__name__}: {exc} (set MICROGRID_DEBUG=1 for the traceback)", markup=False
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
