"""The SCADA point map as data: expanded for a site, checked like a device map, its point list up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from microgrid.errors import ConfigError
from microgrid.scada.pointmap import load_scada_map, render, site_map
from microgrid.site import Site, read_site
from tests.conftest import HOSPITAL, ROOT

DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def hospital() -> Site:
    return read_site(HOSPITAL)


def test_asset_blocks_sit_at_base_plus_stride(hospital: Site) -> None:
    """bess2 is battery 2: base 1000 + 1 × 20; its manual setpoint's range is the battery's own limits."""
    regmap = site_map(hospital).regmap
    assert regmap.by_name["battery2_soc_pct"].address == 1020
    assert regmap.by_name["genset2_state"].address == 1220
    assert regmap.by_name["tier3_relay_state"].address == 1526
    setpoint = regmap.by_name["battery2_manual_setpoint_kw"]
    assert (setpoint.address, setpoint.min, setpoint.max) == (1026, -200.0, 200.0)
    assert "bess2" in setpoint.description
    assert [p.name for p in regmap.points if p.name.startswith("tier") and p.name.endswith("_command")] == [
        "tier1_command",
        "tier2_command",
        "tier3_command",
    ]


def test_a_site_with_more_assets_than_a_block_serves_is_refused(hospital: Site) -> None:
    many = tuple(hospital.batteries[0].model_copy(update={"id": f"b{i}"}) for i in range(11))
    with pytest.raises(ConfigError, match=r"assets.batteries: the site has 11, the map serves at most 10"):
        site_map(hospital.model_copy(update={"batteries": many}))


def test_an_overlapping_block_is_refused_like_a_device_map(hospital: Site, tmp_path: Path) -> None:
    text = (ROOT / "models" / "scada" / "microgrid-scada.yaml").read_text()
    broken = tmp_path / "scada.yaml"
    broken.write_text(text.replace("base: 1200", "base: 1021"))  # genset 1 runs into battery 2
    with pytest.raises(ConfigError, match="overlaps"):
        load_scada_map(hospital, broken)


@pytest.mark.parametrize(("fmt", "name"), [("markdown", "scada-points.md"), ("csv", "scada-points.csv")])
def test_the_committed_point_list_is_up_to_date(hospital: Site, fmt: str, name: str) -> None:
    """docs/scada-points.* are `microgrid scada-map models/sites/hospital.yaml [--format csv]` output:
    regenerate them with it when the map changes."""
    assert (DOCS / name).read_text(encoding="utf-8") == render(site_map(hospital), fmt, hospital.site.name)


def test_csv_rows_name_every_point_once(hospital: Site) -> None:
    rows = render(site_map(hospital), "csv", "x").splitlines()
    assert rows[0] == "address,name,type,words,scale,unit,access,meaning"
    names = [row.split(",")[1] for row in rows[1:]]
    assert len(names) == len(set(names)) == len(site_map(hospital).regmap.points)
