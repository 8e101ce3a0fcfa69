"""The forecast phase with an outage schedule: grid per step, possible windows, the meter winning,
a schedule file turning bad, emergency, tariff prices."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from microgrid import read_profiles, read_site
from microgrid.control.forecast import Forecaster
from microgrid.site import Site
from tests.conftest import HOSPITAL, ROOT, WINTER
from tests.control.conftest import estimate

T0 = datetime(2026, 1, 14, 22, 0, tzinfo=UTC)  # 2026-01-15 00:00 in Kyiv
SCHEDULE = ROOT / "data" / "schedules" / "kharkiv-2026-01-15.csv"


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """The hospital with its schedule file copied next to it (so a test may spoil it)."""
    raw = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    raw["grid"]["schedule"]["source"] = "schedule.csv"
    shutil.copy(SCHEDULE, tmp_path / "schedule.csv")
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return tmp_path


def forecaster(path: Path) -> tuple[Site, Forecaster]:
    site = read_site(path / "site.yaml")
    return site, Forecaster(site, read_profiles(WINTER, site))


def test_schedule_sets_the_grid_and_the_possible_windows(site_dir: Path) -> None:
    _, fc = forecaster(site_dir)
    out = fc(T0, None)
    alpha = out.profiles.grid_available.to_numpy()
    # the published day: on 00-04, off 04-08, possible 08-09, on 09-12, off 12-16, possible 16-17, on 17-20, off 20-24
    hours = np.arange(96) / 4
    off = ((hours >= 4) & (hours < 8)) | ((hours >= 12) & (hours < 16)) | (hours >= 20)
    possible = ((hours >= 8) & (hours < 9)) | ((hours >= 16) & (hours < 17))
    assert np.array_equal(alpha == 0, off)
    assert out.possible_outage is not None and np.array_equal(out.possible_outage, possible)
    assert out.scheduled_now == "on" and not out.voided


def test_the_meter_wins_a_possible_outage_that_happens_is_down_for_its_window(site_dir: Path) -> None:
    site, fc = forecaster(site_dir)
    at_8 = T0 + timedelta(hours=8)
    out = fc(at_8, estimate(site, time=at_8, grid_up=False))
    alpha = out.profiles.grid_available.to_numpy()
    assert alpha[:4].max() == 0.0  # the whole possible hour
    assert out.possible_outage is not None and not out.possible_outage[:4].any()
    assert alpha[4] == 1.0  # 09:00: the schedule says on again
    up = fc(at_8, estimate(site, time=at_8, grid_up=True))
    assert up.profiles.grid_available.iloc[0] == 1.0 and up.possible_outage is not None and up.possible_outage[:4].all()


def test_a_late_return_is_a_possible_outage_after_each_published_end(site_dir: Path) -> None:
    """``late_return_h: 1.5``: the grid is still counted on from each published end (08:00, 16:00), but the
    6 steps after each are ``possible`` (08:00-09:30 and 16:00-17:30, the hours already ``possible``
    included); the last cut (20-24) ends beyond the horizon. A grid measured down at 09:00, with the
    schedule saying on since 08:00, is down through the rest of that window and the assumed hour."""
    raw = yaml.safe_load((site_dir / "site.yaml").read_text(encoding="utf-8"))
    raw["grid"]["schedule"]["late_return_h"] = 1.5
    (site_dir / "site.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    site, fc = forecaster(site_dir)
    out = fc(T0, None)
    hours = np.arange(96) / 4
    off = ((hours >= 4) & (hours < 8)) | ((hours >= 12) & (hours < 16)) | (hours >= 20)
    late = ((hours >= 8) & (hours < 9.5)) | ((hours >= 16) & (hours < 17.5))
    assert np.array_equal(out.profiles.grid_available.to_numpy() == 0, off)  # the published grid, unchanged
    assert out.possible_outage is not None and np.array_equal(out.possible_outage, late)
    at_9 = T0 + timedelta(hours=9)
    down = fc(at_9, estimate(site, time=at_9, grid_up=False))
    assert down.profiles.grid_available.to_numpy()[:4].max() == 0.0 and down.profiles.grid_available.iloc[4] == 1.0
    assert down.possible_outage is not None and not down.possible_outage[:4].any()


def test_in_a_published_outage_a_grid_seen_down_comes_back_a_step_after_the_published_end(site_dir: Path) -> None:
    """The schedule's possible hours made ``on``: seen down at 06:00 in the 04-08 cut, the grid is planned
    down to 08:15 (one step past the published end: a late return is seen at the next cycle only) and
    08:15-09:00, the rest of the assumed hour, is a possible outage (the shadow carries the critical tier)
    rather than a certain one. Seen down at 09:00, when the schedule says on, it is down for the hour."""
    path = site_dir / "schedule.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",possible", ",on"), encoding="utf-8")
    site, fc = forecaster(site_dir)
    at_6 = T0 + timedelta(hours=6)
    out = fc(at_6, estimate(site, time=at_6, grid_up=False))
    alpha = out.profiles.grid_available.to_numpy()
    assert alpha[:9].max() == 0.0 and alpha[9] == 1.0  # 06:00-08:15 down, back at 08:15
    assert out.possible_outage is not None
    assert np.flatnonzero(out.possible_outage).tolist() == [9, 10, 11]  # 08:15-09:00
    at_9 = T0 + timedelta(hours=9)
    cut = fc(at_9, estimate(site, time=at_9, grid_up=False))
    assert cut.scheduled_now == "on"
    assert cut.profiles.grid_available.to_numpy()[:4].max() == 0.0 and cut.profiles.grid_available.iloc[4] == 1.0
    assert cut.possible_outage is not None and not cut.possible_outage.any()


def test_a_spoiled_schedule_keeps_the_last_good_one(site_dir: Path) -> None:
    _, fc = forecaster(site_dir)
    good = fc(T0, None)
    (site_dir / "schedule.csv").write_text("queue,date,start,end,status\n3.1,2026-01-15,00:00,01:00,maybe\n")
    bad = fc(T0, None)
    assert any("outage schedule" in note and "maybe" in note for note in bad.notes)
    assert np.array_equal(bad.profiles.grid_available.to_numpy(), good.profiles.grid_available.to_numpy())


def test_voided_file_is_reported_and_without_grid_is_all_down(site_dir: Path) -> None:
    _, fc = forecaster(site_dir)
    text = (site_dir / "schedule.csv").read_text(encoding="utf-8").replace("# voided: false", "# voided: true")
    (site_dir / "schedule.csv").write_text(text, encoding="utf-8")
    out = fc(T0, None)
    assert out.voided
    none = out.without_grid()
    assert none.profiles.grid_available.max() == 0.0 and none.possible_outage is None
    now = out.without_grid(up_now=True)  # the meter sees it up: usable for the step now only
    assert now.profiles.grid_available.iloc[0] == 1.0 and now.profiles.grid_available.iloc[1:].max() == 0.0
    assert out.profiles.grid_available.max() == 1.0  # the original is untouched


def test_a_cut_of_a_planned_length_keeps_the_schedule_after_it_as_a_possible_outage(site_dir: Path) -> None:
    """``with_cut(4)``: no grid for 4 steps, then the schedule as it was, every step of it with the grid
    up flagged ``possible`` (the contingency shadow carries the protected tiers should the cut last);
    a scheduled 'off' step after the cut stays a definite outage, not a possible one."""
    _, fc = forecaster(site_dir)
    out = fc(T0, None)
    cut = out.with_cut(4)
    before, after = out.profiles.grid_available.to_numpy(), cut.profiles.grid_available.to_numpy()
    assert after[:4].max() == 0.0 and np.array_equal(after[4:], before[4:])
    assert cut.possible_outage is not None
    assert not cut.possible_outage[:4].any()
    assert np.array_equal(cut.possible_outage[4:], before[4:] > 0.5)
    assert (before[4:] < 0.5).any()  # the fixture's schedule has an 'off' step after the cut
    back = out.with_cut(0)  # the grid seen back: the schedule, every step it is up possible
    assert np.array_equal(back.profiles.grid_available.to_numpy(), before)
    assert back.possible_outage is not None and np.array_equal(back.possible_outage, before > 0.5)


def test_tariff_prices_replace_the_reference_prices(site_dir: Path) -> None:
    raw = yaml.safe_load((site_dir / "site.yaml").read_text(encoding="utf-8"))
    raw["grid"]["tariff"] = [
        {"start": "07:00", "end": "23:00", "import_price_per_kwh": 5.0},
        {"start": "23:00", "end": "07:00", "import_price_per_kwh": 1.0},
    ]
    (site_dir / "site.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    _, fc = forecaster(site_dir)
    prices = fc(T0, None).profiles.import_price_per_kwh.to_numpy()
    assert list(prices[:28]) == [1.0] * 28 and list(prices[28:92]) == [5.0] * 64 and list(prices[92:]) == [1.0] * 4


def test_history_turns_into_the_load_forecast(site_dir: Path) -> None:
    """Four days of a flat 70 kW critical demand measured: the forecast follows them, not the reference."""
    site, fc = forecaster(site_dir)
    start = T0 - timedelta(days=4)
    for k in range(4 * 96):
        when = start + k * timedelta(minutes=15)
        fc.observe(estimate(site, time=when, load_kw={"critical": 70.0, "essential": 50.0, "comfort": 20.0}))
    load = fc(T0, None).profiles.load_kw
    assert load["critical"].to_numpy() == pytest.approx(70.0, abs=1e-6)
    assert load["comfort"].to_numpy() == pytest.approx(20.0, abs=1e-6)


def test_seeding_keeps_one_row_per_interval(site_dir: Path) -> None:
    """Feeder and PV readings of one cycle carry different read times (and a stale one may repeat):
    the seeded history keeps one row per interval, so a restart keeps its full history length."""
    import pandas as pd

    _, fc = forecaster(site_dir)
    cycles = pd.date_range(T0 - timedelta(hours=2), periods=8, freq="15min")
    load = pd.DataFrame({"critical": 70.0}, index=cycles + pd.Timedelta(seconds=1))
    load = pd.concat([load, load.iloc[[3]]])  # a repeated read time
    pv = pd.DataFrame({"roof": 5.0}, index=cycles + pd.Timedelta(seconds=2))
    assert fc.seed(load, pv) == 8
    history_load, history_pv = fc.history.frames()
    assert list(history_load.index) == list(cycles) and history_pv["roof"].notna().all()


def test_the_measured_net_load_change_sizes_the_reserve() -> None:
    """RMS of the change in Σ demand − Σ PV between consecutive cycles one interval apart, with the same
    tiers measured: +6, −8 (the pair across a gap and the pair where a tier appears do not count)."""
    from microgrid.control.history import MeasuredHistory

    history, q = MeasuredHistory(), timedelta(minutes=15)
    rows = [
        (T0, {"a": 100.0, "b": 50.0}, {"pv": 10.0}),  # net 140
        (T0 + q, {"a": 104.0, "b": 52.0}, {"pv": 10.0}),  # 146: +6
        (T0 + 2 * q, {"a": 100.0, "b": 48.0}, {"pv": 10.0}),  # 138: −8
        (T0 + 4 * q, {"a": 200.0, "b": 48.0}, {"pv": 10.0}),  # a gap: not counted
        (T0 + 5 * q, {"a": 200.0, "b": 48.0, "c": 30.0}, {"pv": 10.0}),  # another set of tiers: not counted
    ]
    for when, load, pv in rows:
        history.add(when, load, pv)
    assert history.net_change_rms_kw(q) is None  # fewer than 4 pairs
    assert history.net_change_rms_kw(q, min_pairs=2) == pytest.approx(np.sqrt((6.0**2 + 8.0**2) / 2))
