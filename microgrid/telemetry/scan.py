"""``microgrid scan``: discover a SunSpec device over Modbus TCP and decode every point it holds.

:func:`scan` finds ``SunS`` at 40000, 0 or 50000 (:func:`~microgrid.telemetry.sunspec.find_base`),
walks the model chain (:func:`~microgrid.telemetry.sunspec.discover`, run in a worker thread
whose reads go back to the event loop's :class:`~microgrid.telemetry.transport.ModbusTransport`),
then reads each model that microgrid ships a map for (``sunspec-<id>``, located at the model's
address and cut to its discovered length) and decodes its points.

Results, stated once:

- **Keys** are ``"<model id>.<SunSpec point name>"`` (``"802.SoC"``); a model that appears again
  in the chain gets ``"<model id>#<n>.<name>"`` from its second instance (``"802#2.SoC"``).
- **Values are in SunSpec units**, ``raw × 10^SF`` (``802.W`` in W, not our kW), so they compare
  directly with the device's documentation and other SunSpec clients. Scale-factor points are
  listed too (``"802.SoC_SF": -1``).
- **Not-implemented points** (SunSpec sentinel, or a not-implemented scale factor) are listed
  with the value ``None`` (JSON ``null``), so the point set depends only on the model and its
  length.
- **Models without a shipped map** are listed in ``models`` with no points.
- **A chain that breaks** (no end marker, an unreadable header) or a model whose registers
  cannot be read keeps what was found; :attr:`ScanResult.problems` says what broke.
- **Errors**: :class:`ScanError` (a :class:`~microgrid.errors.DeviceError`) when nothing answers
  at ``host:port`` or no base address holds ``SunS``.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, replace

from rich.markup import escape
from rich.table import Table

from microgrid.errors import DeviceError
from microgrid.telemetry.maps import Point, RegisterMap, load_map, shipped_maps
from microgrid.telemetry.registers import Codec, DataType, Decoded, Quality, Value, decode
from microgrid.telemetry.sunspec import BASE_ADDRESSES, ModelHeader, SunSpecError, discover, find_base
from microgrid.telemetry.transport import CommsError, ExceptionCodeError, ModbusTransport

__all__ = [
    "ScanError",
    "ScanModel",
    "ScanPoint",
    "ScanResult",
    "format_table",
    "parse_address",
    "run_scan",
    "scan",
    "to_json",
]

DEFAULT_PORT = 502
_KILO = {"kW": "W", "kWh": "Wh", "kVA": "VA", "kvar": "var"}


class ScanError(DeviceError):
    """Nothing answers at the address, or the device holds no SunSpec map."""


@dataclass(frozen=True, slots=True)
class ScanPoint:
    """One decoded point: key ``"<model>.<SunSpec name>"``, our map's name, value in SunSpec units."""

    key: str
    name: str
    value: Value | None
    unit: str | None
    quality: Quality
    label: str | None = None
    """The label of an enumerated value (``"connected"``), if the map gives one."""


@dataclass(frozen=True, slots=True)
class ScanModel:
    """One model of the chain, its decoded points (none without a shipped map) and what went wrong."""

    header: ModelHeader
    map_name: str | None
    points: tuple[ScanPoint, ...] = ()
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What :func:`scan` found at ``host:port`` for ``unit``: the base address and the model chain."""

    host: str
    port: int
    unit: int
    base: int
    chain: tuple[ScanModel, ...]
    problems: tuple[str, ...] = ()
    """Chain-level problems (a chain that breaks off); per-model ones are in :attr:`ScanModel.problem`."""

    @property
    def models(self) -> list[int]:
        """Model ids in chain order."""
        return [m.header.model_id for m in self.chain]

    @property
    def points(self) -> dict[str, Value | None]:
        """Every decoded point: ``"<model id>.<SunSpec name>"`` → value in SunSpec units (``None``: not implemented)."""
        return {p.key: p.value for m in self.chain for p in m.points}

    @property
    def all_problems(self) -> list[str]:
        """Chain-level and per-model problems."""
        return [*self.problems, *(f"model {m.header.model_id}: {m.problem}" for m in self.chain if m.problem)]


# -- address ---------------------------------------------------------------------------------


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``"HOST[:PORT]"`` → ``(host, port)``; IPv6 as ``[::1]:502`` or bare ``::1``.

    Raises
    ------
    ValueError
        Empty host, a port that is not an integer in 1…65535, or stray brackets or spaces.
    """
    raw = text.strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0 or (raw[end + 1 :] and not raw[end + 1 :].startswith(":")):
            raise ValueError(f"address {text!r}: expected [IPv6] or [IPv6]:PORT")
        host, port_text = raw[1:end], raw[end + 2 :]
        if raw[end + 1 :] == ":":
            raise ValueError(f"address {text!r}: empty port after ':'")
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
        if not port_text:
            raise ValueError(f"address {text!r}: empty port after ':'")
    if not host or any(c.isspace() or c in "[]/" for c in host):
        raise ValueError(f"address {text!r}: expected HOST or HOST:PORT (a host name or IP address)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"address {text!r}: the port must be an integer in 1…65535, got {port_text!r}")
    return host, int(port_text)


# -- decoding --------------------------------------------------------------------------------


def _sunspec_codec(regmap: RegisterMap, point: Point) -> Codec:
    """The point's codec in SunSpec units (``raw × 10^SF``): no unit scale, sign or range of ours."""
    return replace(regmap.codecs[point.name], scale=1.0, negate=False, minimum=None, maximum=None, choices=None)


def _sunspec_unit(point: Point) -> str | None:
    if point.unit is None or point.scale in (None, 1.0):
        return point.unit
    return _KILO.get(point.unit) if math.isclose(point.scale, 0.001) else None


def decode_sunspec(regmap: RegisterMap, registers: dict[int, int]) -> dict[str, Decoded]:
    """Decode every readable point of a located map held in ``registers``, in SunSpec units (by our name)."""
    result: dict[str, Decoded] = {}
    for point in sorted(regmap.points, key=lambda p: p.type is not DataType.SUNSSF):
        words = [registers.get(a) for a in range(point.address, point.address + point.words)]
        regs = [w for w in words if w is not None]
        if not point.readable or len(regs) != point.words:
            continue
        codec = _sunspec_codec(regmap, point)
        sf = result.get(point.scale_factor) if point.scale_factor is not None else None
        if point.scale_factor is None:
            result[point.name] = decode(regs, codec)
        elif sf is not None and sf.quality is Quality.OK and isinstance(sf.value, int):
            result[point.name] = decode(regs, codec, sf.value)
        elif sf is not None:
            result[point.name] = Decoded(None, sf.quality, decode(regs, codec, 0).raw)
    return result


def _scan_points(regmap: RegisterMap, registers: dict[int, int], prefix: str) -> tuple[ScanPoint, ...]:
    decoded = decode_sunspec(regmap, registers)
    points: list[ScanPoint] = []
    for point in regmap.points:
        if point.name not in decoded:
            continue
        d = decoded[point.name]
        value = d.value if d.quality is not Quality.NOT_IMPLEMENTED else None
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        label = point.values.get(value) if point.values is not None and isinstance(value, int) else None
        key = f"{prefix}.{point.source_name or point.name}"
        points.append(ScanPoint(key, point.name, value, _sunspec_unit(point), d.quality, label))
    return tuple(points)


# -- scanning --------------------------------------------------------------------------------


class _Probe:
    """A synchronous ``read(address, count)`` for :mod:`~microgrid.telemetry.sunspec`, run in a worker thread."""

    def __init__(self, transport: ModbusTransport, unit: int, loop: asyncio.AbstractEventLoop) -> None:
        self.transport, self.unit, self.loop = transport, unit, loop
        self.answered = False
        """True once the device answered anything (registers or a Modbus exception)."""
        self.failure: CommsError | None = None
        """The last request that got no answer at all."""

    def __call__(self, address: int, count: int) -> list[int]:
        future = asyncio.run_coroutine_threadsafe(self.transport.read(self.unit, address, count), self.loop)
        try:
            registers = future.result()
        except ExceptionCodeError:
            self.answered = True
            raise
        except CommsError as exc:
            self.failure = exc
            raise
        self.answered = True
        return registers


async def _discover(probe: _Probe, where: str) -> tuple[int, list[ModelHeader], tuple[str, ...]]:
    errors = (ExceptionCodeError, CommsError)
    try:
        base = await asyncio.to_thread(find_base, probe, BASE_ADDRESSES, errors)
    except SunSpecError as exc:
        if not probe.answered:
            raise ScanError(
                f"{where}: no Modbus answer at any SunSpec base address; last error: {probe.failure}"
            ) from None
        raise ScanError(f"{where}: no SunSpec device found: {exc}") from None
    try:
        headers = await asyncio.to_thread(discover, probe, (base,), errors=errors)
    except SunSpecError as exc:
        return base, exc.found, (str(exc),)
    return base, headers, ()


async def _read_model(transport: ModbusTransport, unit: int, header: ModelHeader, prefix: str) -> ScanModel:
    map_name = f"sunspec-{header.model_id}"
    if map_name not in shipped_maps():
        return ScanModel(header, None)
    try:
        regmap = load_map(map_name).located(header.address, header.length)
    except ValueError:
        return ScanModel(header, map_name, problem=f"length {header.length} holds no point of {map_name}")
    registers: dict[int, int] = {}
    try:
        for block in regmap.read_blocks():
            values = await transport.read(unit, block.start, block.count)
            registers.update(zip(range(block.start, block.end), values, strict=True))
    except (ExceptionCodeError, CommsError) as exc:
        return ScanModel(header, map_name, problem=f"cannot read its registers: {exc}")
    return ScanModel(header, map_name, _scan_points(regmap, registers, prefix))


async def scan(host: str, port: int = DEFAULT_PORT, unit: int = 1, timeout_s: float = 1.0) -> ScanResult:
    """Discover the SunSpec device at ``host:port`` (unit id ``unit``) and decode all its points.

    Raises
    ------
    ScanError
        Nothing answers, or no SunSpec map at 40000, 0 or 50000.
    ValueError
        A unit id outside 0…247, a port outside 1…65535 or a non-positive timeout.
    """
    if not 0 <= unit <= 247 or not 1 <= port <= 65535 or not timeout_s > 0:
        raise ValueError(f"unit must be in 0…247, port in 1…65535, timeout > 0; got {unit}, {port}, {timeout_s}")
    transport = ModbusTransport(host, port, timeout_s=timeout_s, retries=1)
    where = f"{host}:{port} unit {unit}"
    try:
        base, headers, problems = await _discover(_Probe(transport, unit, asyncio.get_running_loop()), where)
        chain: list[ScanModel] = []
        for i, header in enumerate(headers):
            n = sum(1 for h in headers[: i + 1] if h.model_id == header.model_id)
            prefix = str(header.model_id) if n == 1 else f"{header.model_id}#{n}"
            chain.append(await _read_model(transport, unit, header, prefix))
    finally:
        transport.close()
    return ScanResult(host, port, unit, base, tuple(chain), problems)


def run_scan(address: str, unit: int = 1, timeout_s: float = 1.0) -> ScanResult:
    """Synchronous :func:`scan` of ``"HOST[:PORT]"`` (for the CLI)."""
    host, port = parse_address(address)
    return asyncio.run(scan(host, port, unit, timeout_s))


# -- output ----------------------------------------------------------------------------------


def _format_value(point: ScanPoint) -> str:
    if point.value is None:
        return "—"
    text = f"{point.value:.12g}" if isinstance(point.value, float) else str(point.value)
    return escape(f"{text} ({point.label})" if point.label else text)


def format_table(result: ScanResult) -> Table:
    """A rich table: one section per model, one row per point (``—``: not implemented)."""
    table = Table(title=f"SunSpec device at {result.host}:{result.port} unit {result.unit}, base {result.base}")
    for column in ("point", "value", "unit", "microgrid name"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for model in result.chain:
        h = model.header
        what = model.map_name or "no shipped map: points not decoded"
        table.add_row(f"[bold]model {h.model_id}[/bold]", "", "", f"at {h.address}, L={h.length}, {what}")
        for point in model.points:
            table.add_row(point.key, _format_value(point), point.unit or "", point.name)
        table.add_section()
    problems = result.all_problems
    if problems:
        table.caption = escape("problems: " + "; ".join(problems))
    return table


def to_json(result: ScanResult, indent: int | None = None) -> str:
    """``{"models": [1, 124, 802], "points": {"802.SoC": 65.5, …}}`` (``null``: not implemented)."""
    return json.dumps({"models": result.models, "points": result.points}, indent=indent, allow_nan=False)
