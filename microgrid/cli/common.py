"""What every ``microgrid`` command shares: the app, the consoles, the exit codes.

Exit codes: 0 success; 1 internal error; 2 bad input (site, profiles, state, register map,
arguments); 3 no feasible (or no trustworthy) plan; 4 a device did not answer or refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_NO_PLAN, EXIT_DEVICE = 0, 1, 2, 3, 4

app = typer.Typer(
    name="microgrid",
    help="Manage an energy island: validate a site, plan its dispatch (MILP, HiGHS), simulate and read its devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = Console(highlight=False, emoji=False, soft_wrap=True)

SiteArg = Annotated[Path, typer.Argument(help="Site file (YAML), e.g. models/sites/hospital.yaml.", show_default=False)]


def fail(code: int, message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)  # the message quotes user input
    return typer.Exit(code)
