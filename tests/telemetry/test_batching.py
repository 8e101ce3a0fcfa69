"""Read planning: the fewest requests, never more than 125 registers, no point split."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.telemetry import load_map, read_blocks
from microgrid.telemetry.batching import ReadBlock


@dataclass(frozen=True)
class P:
    name: str
    address: int
    words: int = 1
    readable: bool = True


def run(*points: P, max_registers: int = 125, max_gap: int = 0) -> list[tuple[int, int]]:
    return [(b.start, b.count) for b in read_blocks(points, max_registers, max_gap)]


def test_contiguous_points_share_one_request() -> None:
    assert run(*(P(f"p{i}", 100 + i) for i in range(10))) == [(100, 10)]


def test_a_long_run_splits_at_125() -> None:
    assert run(*(P(f"p{i}", i) for i in range(200))) == [(0, 125), (125, 75)]


def test_multi_register_points_are_never_split() -> None:
    points = [P(f"p{i}", i) for i in range(124)] + [P("wide", 124, 2)]
    assert run(*points) == [(0, 124), (124, 2)]


def test_gap_tolerance() -> None:
    a, b = P("a", 0), P("b", 10)
    assert run(a, b, max_gap=8) == [(0, 1), (10, 1)]
    assert run(a, b, max_gap=9) == [(0, 11)]


def test_write_only_points_are_not_read_and_order_does_not_matter() -> None:
    blocks = read_blocks([P("c", 2), P("w", 1, readable=False), P("a", 0)], max_gap=1)
    assert blocks == [ReadBlock(0, 3, ("a", "c"))]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="1…125"):
        read_blocks([P("a", 0)], max_registers=126)
    with pytest.raises(ValueError, match="≥ 0"):
        read_blocks([P("a", 0)], max_gap=-1)
    with pytest.raises(ValueError, match="spans 8 registers"):
        read_blocks([P("s", 0, 8)], max_registers=4)
    assert read_blocks([]) == []


@pytest.mark.parametrize(
    ("name", "requests"),
    [
        ("generic-battery-inverter", 2),  # 0…119 and the setpoints at 200…
        ("generic-grid-meter", 1),
        ("generic-load-feeder", 2),
        ("dse-gencomm", 4),  # pages 3, 4, 6, 7
        ("victron-gx-system", 5),  # 800…826, 840…846, 850…851, 2700…2702, 2900…2902
        ("sunspec-802", 1),
        ("sunspec-103", 1),
    ],
)
def test_known_layouts_need_the_minimal_number_of_requests(name: str, requests: int) -> None:
    regmap = load_map(name)
    located = regmap.located(40002) if regmap.sunspec else regmap
    assert len(located.read_blocks()) == requests


def minimal_requests(points: list[P], max_registers: int, max_gap: int) -> int:
    """Brute force: fewest runs of consecutive points (sorted) that each fit one request."""
    pts = sorted((p for p in points if p.readable), key=lambda p: (p.address, p.words))
    best = [0] + [len(pts) + 1] * len(pts)
    for end in range(1, len(pts) + 1):
        for start in range(end):
            run_ = pts[start:end]
            span = max(p.address + p.words for p in run_) - run_[0].address
            reach = run_[0].address + run_[0].words
            ok = span <= max_registers
            for p in run_[1:]:
                ok = ok and p.address - reach <= max_gap
                reach = max(reach, p.address + p.words)
            if ok:
                best[end] = min(best[end], best[start] + 1)
    return best[-1]


@st.composite
def layouts(draw: st.DrawFn) -> list[P]:
    count = draw(st.integers(0, 25))
    points, address = [], draw(st.integers(0, 50))
    for i in range(count):
        words = draw(st.sampled_from([1, 1, 2, 4, 8]))
        points.append(P(f"p{i}", address, words, draw(st.sampled_from([True, True, True, False]))))
        address += words + draw(st.sampled_from([0, 0, 1, 3, 20, 130]))
    return draw(st.permutations(points))


@settings(max_examples=200, deadline=None)
@given(layouts(), st.integers(8, 125), st.integers(0, 30))
def test_blocks_are_minimal_valid_and_cover_every_point(points: list[P], max_registers: int, max_gap: int) -> None:
    blocks = read_blocks(points, max_registers, max_gap)
    assert len(blocks) == minimal_requests(points, max_registers, max_gap)
    by_name = {p.name: p for p in points}
    seen: list[str] = []
    for block in blocks:
        assert 1 <= block.count <= max_registers
        for name in block.names:
            p = by_name[name]
            assert block.start <= p.address and p.address + p.words <= block.end
        seen.extend(block.names)
    assert sorted(seen) == sorted(p.name for p in points if p.readable)
