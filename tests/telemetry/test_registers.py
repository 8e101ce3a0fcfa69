"""The register codec: hand-checked vectors, errors, and hypothesis round-trips.

Every data type × word order × scale × scale factor × sentinel × sign: registers → decode →
encode gives back the same registers, and values → encode → decode stay within half a step.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from microgrid.telemetry.registers import (
    Codec,
    DataType,
    EncodeError,
    Quality,
    WordOrder,
    decode,
    encode,
    encode_sentinel,
    is_signed,
    parse_type,
    sunspec_sentinel,
    type_words,
)

INT_TYPES = [t for t in DataType if t not in (DataType.F32, DataType.F64, DataType.STRING, DataType.SUNSSF)]
FLOAT_TYPES = [DataType.F32, DataType.F64]
SCALES = [1.0, 0.1, 0.01, 0.001, 10.0, 100.0, 0.5, -0.1]
FAST = settings(max_examples=150, deadline=None)


def words_of(pattern: int, count: int, order: WordOrder) -> list[int]:
    """An independent splitter: most significant register first, then reversed for 'little'."""
    words = [(pattern >> (16 * (count - 1 - i))) & 0xFFFF for i in range(count)]
    return words if order is WordOrder.BIG else words[::-1]


def bits(value: int, data_type: DataType) -> int:
    return value & ((1 << (16 * type_words(data_type))) - 1)


# -- hand-checked vectors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_type", "order", "registers", "expected"),
    [
        (DataType.U16, WordOrder.BIG, [0xFFFF], 65535),
        (DataType.S16, WordOrder.BIG, [0xFFFF], -1),
        (DataType.S32, WordOrder.BIG, [0xFFFF, 0xFFFE], -2),
        (DataType.S32, WordOrder.LITTLE, [0xFFFE, 0xFFFF], -2),
        (DataType.U32, WordOrder.BIG, [0x0001, 0x0000], 65536),
        (DataType.U32, WordOrder.LITTLE, [0x0000, 0x0001], 65536),
        (DataType.S64, WordOrder.BIG, [0xFFFF, 0xFFFF, 0xFFFF, 0xFF85], -123),
        (DataType.U64, WordOrder.LITTLE, [0x0004, 0x0003, 0x0002, 0x0001], 0x0001_0002_0003_0004),
        (DataType.F32, WordOrder.BIG, [0x3F80, 0x0000], 1.0),
        (DataType.F32, WordOrder.LITTLE, [0x0000, 0xC020], -2.5),
        (DataType.F64, WordOrder.BIG, [0x4059, 0x0000, 0x0000, 0x0000], 100.0),
        (DataType.SUNSSF, WordOrder.BIG, [0xFFFE], -2),
    ],
)
def test_known_vectors(data_type: DataType, order: WordOrder, registers: list[int], expected: float) -> None:
    codec = Codec(data_type, word_order=order)
    decoded = decode(registers, codec)
    assert decoded.value == expected and decoded.quality is Quality.OK
    assert encode(expected, codec) == registers


def test_scale_and_scale_factor_vectors() -> None:
    assert decode([2305], Codec(DataType.U16, scale=0.1)).value == 230.5
    watts = Codec(DataType.S16, scale_factor=True)
    assert decode([1234], watts, scale_factor=-1).value == 123.4
    assert decode([0xFFFF], watts, scale_factor=2).value == -100.0
    kilowatts = Codec(DataType.S16, scale=0.001, scale_factor=True)
    assert decode([1234], kilowatts, scale_factor=1).value == 12.34
    assert encode(12.34, kilowatts, scale_factor=1) == [1234]
    assert decode([3], Codec(DataType.U16, scale=0.1)).value == 0.3  # exact division, not 3 × 0.1


def test_integer_points_decode_to_int_and_scaled_ones_to_float() -> None:
    assert isinstance(decode([7], Codec(DataType.ENUM16)).value, int)
    assert isinstance(decode([7], Codec(DataType.U16, scale=0.1)).value, float)
    assert isinstance(decode([7], Codec(DataType.U16, scale_factor=True), scale_factor=0).value, float)


def test_strings() -> None:
    codec = Codec(DataType.STRING, count=4)
    assert encode("SunS", codec) == [0x5375, 0x6E53, 0, 0]
    assert decode([0x5375, 0x6E53, 0, 0], codec).value == "SunS"
    assert decode([0x4142, 0x0043, 0x4400, 0], codec).value == "AB"  # up to the first NUL
    assert decode([0xFFFE, 0xC3A9, 0, 0], codec).quality is Quality.OK  # invalid UTF-8 never crashes


def test_sign_inversion() -> None:
    codec = Codec(DataType.S16, scale=0.001, negate=True, minimum=-30, maximum=30)
    assert decode([500], codec).value == -0.5
    assert encode(-0.5, codec) == [500]
    with pytest.raises(ValueError, match="signed type"):
        Codec(DataType.U16, negate=True)


# -- sentinels, ranges, choices -----------------------------------------------------------------


@pytest.mark.parametrize("data_type", [t for t in DataType if t is not DataType.STRING])
@pytest.mark.parametrize("order", list(WordOrder))
def test_sunspec_sentinels_decode_as_not_implemented(data_type: DataType, order: WordOrder) -> None:
    codec = Codec(data_type, word_order=order, sentinel=sunspec_sentinel(data_type), scale=0.1)
    registers = encode_sentinel(codec)
    assert registers == words_of(sunspec_sentinel(data_type), codec.words, order)
    decoded = decode(registers, codec)
    assert decoded.value is None and decoded.quality is Quality.NOT_IMPLEMENTED


def test_sunspec_sentinel_values() -> None:
    assert sunspec_sentinel(DataType.S16) == 0x8000 and sunspec_sentinel(DataType.U16) == 0xFFFF
    assert sunspec_sentinel(DataType.ACC32) == 0 and sunspec_sentinel(DataType.U32) == 0xFFFFFFFF
    assert sunspec_sentinel(DataType.SUNSSF) == 0x8000 and sunspec_sentinel(DataType.S32) == 0x80000000
    assert encode_sentinel(Codec(DataType.STRING, count=3, sentinel=0)) == [0, 0, 0]


def test_a_value_that_would_write_the_sentinel_is_refused() -> None:
    codec = Codec(DataType.S16, sentinel=0x8000)
    with pytest.raises(EncodeError, match="sentinel"):
        encode(-32768, codec)
    with pytest.raises(EncodeError, match="sentinel"):
        encode("", Codec(DataType.STRING, count=2, sentinel=0))
    with pytest.raises(EncodeError, match="no not-implemented sentinel"):
        encode_sentinel(Codec(DataType.U16))


def test_float_nan_is_not_implemented_and_inf_out_of_range() -> None:
    assert decode([0x7FC0, 0x0000], Codec(DataType.F32)).quality is Quality.NOT_IMPLEMENTED
    assert decode([0x7F80, 0x0000], Codec(DataType.F32)).quality is Quality.OUT_OF_RANGE


def test_range_flags_on_decode_and_refuses_on_encode() -> None:
    codec = Codec(DataType.U16, scale=0.01, minimum=0, maximum=100)
    assert decode([10001], codec).quality is Quality.OUT_OF_RANGE
    assert decode([10001], codec).value == 100.01
    assert decode([10000], codec).quality is Quality.OK
    with pytest.raises(EncodeError, match=r"range \[0, 100\]"):
        encode(100.5, codec)
    assert decode([11], Codec(DataType.SUNSSF)).quality is Quality.OUT_OF_RANGE
    with pytest.raises(EncodeError, match="range"):
        encode(11, Codec(DataType.SUNSSF))


def test_choices_limit_writes() -> None:
    codec = Codec(DataType.ENUM16, minimum=0, maximum=5, choices=frozenset({1, 2}))
    assert encode(2, codec) == [2]
    with pytest.raises(EncodeError, match="not one of"):
        encode(3, codec)


@pytest.mark.parametrize(
    ("codec", "value", "message"),
    [
        (Codec(DataType.U16), -1, "outside"),
        (Codec(DataType.U16), 65536, "outside"),
        (Codec(DataType.S16, scale=0.1), 3276.8, "outside"),
        (Codec(DataType.U16), "12", "needs a number"),
        (Codec(DataType.U16), True, "needs a number"),
        (Codec(DataType.F32), math.nan, "non-finite"),
        (Codec(DataType.F32), math.inf, "non-finite"),
        (Codec(DataType.F32), 1e39, "overflows"),
        (Codec(DataType.STRING, count=2), "hello", "does not fit"),
        (Codec(DataType.STRING, count=2), "a\0b", "NUL"),
        (Codec(DataType.STRING, count=2), 12, "needs text"),
    ],
)
def test_encode_refuses_what_it_cannot_represent(codec: Codec, value: object, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode(value, codec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("registers", "codec", "sf", "message"),
    [
        ([1], Codec(DataType.U32), None, "needs 2 register"),
        ([70000], Codec(DataType.U16), None, "0…65535"),
        ([-1], Codec(DataType.U16), None, "0…65535"),
        ([1], Codec(DataType.U16, scale_factor=True), None, "scale-factor point"),
        ([1], Codec(DataType.U16, scale_factor=True), 11, "-10…10"),
    ],
)
def test_decode_refuses_bad_input(registers: list[int], codec: Codec, sf: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(registers, codec, sf)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": DataType.STRING}, "register count"),
        ({"type": DataType.U32, "count": 1}, "spans 2"),
        ({"type": DataType.U16, "scale": 0.0}, "non-zero"),
        ({"type": DataType.U16, "sentinel": 0x10000}, "does not fit"),
        ({"type": DataType.U16, "minimum": 2, "maximum": 1}, "minimum"),
    ],
)
def test_codec_refuses_inconsistent_definitions(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Codec(**kwargs)  # type: ignore[arg-type]


def test_type_names_and_aliases() -> None:
    assert parse_type("uint16") is DataType.U16 and parse_type("int32") is DataType.S32
    assert parse_type("float32") is DataType.F32 and parse_type("acc32") is DataType.ACC32
    with pytest.raises(ValueError, match="unknown data type 'u17'"):
        parse_type("u17")


# -- hypothesis round-trips ---------------------------------------------------------------------


@st.composite
def int_cases(draw: st.DrawFn) -> tuple[Codec, list[int], int | None]:
    data_type = draw(st.sampled_from(INT_TYPES))
    order = draw(st.sampled_from(list(WordOrder)))
    scale = draw(st.sampled_from(SCALES))
    sf = draw(st.none() | st.integers(-10, 10))
    words = type_words(data_type)
    signed = is_signed(data_type)
    sentinel = draw(st.sampled_from([None, sunspec_sentinel(data_type)]))
    negate = signed and draw(st.booleans())
    scaled = scale != 1 or sf is not None
    width = 16 * words if not (scaled and words == 4) else 50  # float64 holds 53 bits exactly
    low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    raw = draw(st.integers(low, high))
    codec = Codec(
        data_type, word_order=order, scale=scale, scale_factor=sf is not None, sentinel=sentinel, negate=negate
    )
    return codec, words_of(bits(raw, data_type), words, order), sf


@FAST
@given(int_cases())
def test_integer_registers_round_trip(case: tuple[Codec, list[int], int | None]) -> None:
    codec, registers, sf = case
    decoded = decode(registers, codec, sf)
    if decoded.quality is Quality.NOT_IMPLEMENTED:
        assert decoded.raw == codec.sentinel and decoded.value is None
        return
    assert decoded.value is not None and not isinstance(decoded.value, str)
    assert encode(decoded.value, codec, sf) == registers


@st.composite
def float_cases(draw: st.DrawFn) -> tuple[Codec, list[int], int | None]:
    data_type = draw(st.sampled_from(FLOAT_TYPES))
    order = draw(st.sampled_from(list(WordOrder)))
    scale = draw(st.sampled_from(SCALES))
    sf = draw(st.none() | st.integers(-10, 10))
    codec = Codec(data_type, word_order=order, scale=scale, scale_factor=sf is not None, negate=draw(st.booleans()))
    raw = draw(st.integers(0, (1 << 64) - 1))
    return codec, words_of(bits(raw, data_type), codec.words, order), sf


@FAST
@given(float_cases())
def test_float_registers_round_trip(case: tuple[Codec, list[int], int | None]) -> None:
    codec, registers, sf = case
    decoded = decode(registers, codec, sf)
    if decoded.quality is Quality.NOT_IMPLEMENTED:  # NaN
        return
    assert isinstance(decoded.value, float)
    if math.isinf(decoded.value):
        assert decoded.quality is Quality.OUT_OF_RANGE
        return
    exact = codec.type is DataType.F32 or (codec.scale == 1 and not sf)
    again = encode(decoded.value, codec, sf)
    if exact:
        assert again == registers
    else:  # float64 through a scale: within a few ulps
        assert decode(again, codec, sf).value == pytest.approx(decoded.value, rel=1e-14, abs=1e-300)


@FAST
@given(
    st.sampled_from([DataType.U16, DataType.S16, DataType.U32, DataType.S32, DataType.S64]),
    st.sampled_from(list(WordOrder)),
    st.sampled_from(SCALES),
    st.integers(-4, 4),
    st.floats(-1.0, 1.0),
)
def test_values_round_trip_within_half_a_step(
    data_type: DataType, order: WordOrder, scale: float, sf: int, fraction: float
) -> None:
    codec = Codec(data_type, word_order=order, scale=scale, scale_factor=True)
    step = abs(scale) * 10.0**sf
    words = type_words(data_type)
    top = min((1 << (16 * words - 1)) - 1, 1 << 50) * step
    value = fraction * top if is_signed(data_type) else math.copysign(fraction * top, scale)
    decoded = decode(encode(value, codec, sf), codec, sf)
    assert isinstance(decoded.value, float)
    assert abs(decoded.value - value) <= step / 2 * (1 + 1e-9) + abs(value) * 1e-15


@FAST
@given(st.integers(1, 20), st.sampled_from(list(WordOrder)), st.data())
def test_strings_round_trip(count: int, order: WordOrder, data: st.DataObject) -> None:
    codec = Codec(DataType.STRING, count=count, word_order=order)
    text = data.draw(st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=2 * count))
    assume(len(text.encode("utf-8")) <= 2 * count)
    assert decode(encode(text, codec), codec).value == text


@FAST
@given(st.integers(1, 10).flatmap(lambda n: st.lists(st.integers(0, 0xFFFF), min_size=n, max_size=n)))
def test_garbage_strings_never_crash(registers: list[int]) -> None:
    decoded = decode(registers, Codec(DataType.STRING, count=len(registers)))
    assert isinstance(decoded.value, str)


@FAST
@given(st.integers(-10, 10), st.sampled_from(list(WordOrder)))
def test_scale_factor_points_round_trip(sf: int, order: WordOrder) -> None:
    codec = Codec(DataType.SUNSSF, word_order=order, sentinel=0x8000)
    assert decode(encode(sf, codec), codec).value == sf


def test_f32_bits_match_struct() -> None:
    registers = encode(3.14, Codec(DataType.F32))
    assert struct.unpack(">f", struct.pack(">HH", *registers))[0] == pytest.approx(3.14, rel=1e-7)
