"""What every ``microgrid`` command shares: the app, the consoles, the exit codes.

Exit codes: 0 success; 1 internal error; 2 bad input (site, profiles, state, register map,
arguments); 3 no feasible (or no trustworthy) plan; 4 a device did not answer or refused.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from microgrid.errors import InputError

if TYPE_CHECKING:  # commands import what they use when they run: `--help` loads no model (issue 14)
    from microgrid.site import Site
    from microgrid.telemetry.wiring import SiteDevices

T = TypeVar("T")

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


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; asyncio's own error reports go to the log, not the operator's screen."""
    import asyncio  # only the commands that talk to devices need an event loop (start-up cost)

    async def wrapped() -> T:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, ctx: logging.getLogger("microgrid").debug("asyncio: %s", ctx.get("message"))
        )
        return await coro

    return asyncio.run(wrapped())


def load_site(path: Path) -> Site:
    """The site file at ``path``, or exit 2 with every problem listed."""
    from microgrid.site import read_site

    try:
        return read_site(path)
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None


def connect_devices(site: Site, path: Path) -> SiteDevices:
    """The site's devices (maps loaded and checked against their assets), or exit 2."""
    from microgrid.telemetry.wiring import connect

    try:
        return connect(site, str(path))
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
