"""``microgrid scada-map`` and the ``--scada*`` options of ``run`` and ``demo``: the controller served to SCADA.

Light at import (the CLI starts fast): pymodbus and the SCADA package load only when a command uses them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer

from microgrid.cli.common import EXIT_BAD_INPUT, SiteArg, app, err, fail, load_site

__all__ = ["ScadaAllowOpt", "ScadaOpt", "ScadaTlsOpt", "ScadaWritesOpt", "scada_map", "scada_options", "scada_serving"]

ScadaOpt = Annotated[
    str | None,
    typer.Option(
        "--scada",
        metavar="HOST:PORT",
        help="Serve the controller to SCADA/PLCs over Modbus TCP here (e.g. 127.0.0.1:1502; docs/scada-points.md).",
    ),
]
ScadaWritesOpt = Annotated[
    bool, typer.Option("--scada-writes", help="Accept SCADA commands (default: read-only, writes get exception 01).")
]
ScadaAllowOpt = Annotated[
    list[str] | None,
    typer.Option("--scada-allow", metavar="CIDR", help="Addresses SCADA may connect from (repeat; default loopback)."),
]
ScadaTlsOpt = Annotated[
    Path | None,
    typer.Option(
        "--scada-tls",
        metavar="DIR",
        help="Modbus/TCP Security: server.crt, server.key, ca.crt (clients' CA), optionally roles.yaml, in DIR.",
    ),
]


def scada_options(endpoint: str | None, writes: bool, allow: list[str] | None, tls: Path | None) -> Any:
    """The SCADA server's settings (:class:`microgrid.scada.Options`), None without ``--scada``; exit 2 on bad input."""
    if endpoint is None:
        if writes or allow or tls:
            raise fail(EXIT_BAD_INPUT, "--scada-writes, --scada-allow and --scada-tls need --scada HOST:PORT")
        return None
    from microgrid.errors import ConfigError
    from microgrid.scada import options

    try:
        settings = options(endpoint, writes=writes, allow=allow or (), tls_dir=tls)
    except (ValueError, ConfigError) as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    if not allow and settings.host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"note: --scada {endpoint} accepts connections from loopback only: add --scada-allow CIDR", markup=False
        )
    return settings


@contextlib.asynccontextmanager
async def scada_serving(runner: Any, settings: Any) -> AsyncIterator[Any]:
    """Serve ``runner``'s controller to SCADA while the block runs (nothing when ``settings`` is None)."""
    if settings is None:
        yield None
        return
    from microgrid.scada import serve_runner

    try:
        server = serve_runner(runner, settings)
        scada = await server.__aenter__()
    except (OSError, RuntimeError) as exc:
        raise fail(EXIT_BAD_INPUT, f"--scada {settings.host}:{settings.port}: cannot listen: {exc}") from None
    try:
        yield scada
    finally:
        await server.__aexit__(None, None, None)


@app.command("scada-map")
def scada_map(
    site: SiteArg,
    fmt: Annotated[str, typer.Option("--format", help="markdown or csv.")] = "markdown",
) -> None:
    """Print SITE's SCADA point list (address, name, type, scale, unit, access, meaning)."""
    from microgrid.errors import ConfigError
    from microgrid.scada.pointmap import render, site_map

    if fmt not in ("markdown", "csv"):
        raise fail(EXIT_BAD_INPUT, f"--format: markdown or csv, got {fmt!r}")
    parsed = load_site(site)
    try:
        text = render(site_map(parsed), fmt, parsed.site.name)
    except ConfigError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    print(text, end="")
