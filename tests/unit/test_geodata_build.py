"""Invariants of the committed geodata files and determinism of the build."""
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from dashboard.geodata import load_geodata, validate_layers
from dashboard.geodata.build import build
from dashboard.geodata.names import PLACE_A, PLACE_B, PLACE_PINYIN, place_en

GEODATA = Path(__file__).resolve().parents[2] / "geodata"
FILES = ["district.geojson", "towns.geojson", "zones.geojson", "grids.geojson", "hazards.geojson"]
METRIC = "EPSG:32651"


@pytest.fixture(scope="module")
def gd():
    return load_geodata(GEODATA)


@pytest.fixture(scope="module")
def metric(gd):
    return {k: getattr(gd, k).to_crs(METRIC) for k in ("district", "towns", "zones", "grids")}


def test_counts(gd):
    assert len(gd.district) == 1
    assert len(gd.towns) == 17
    assert len(gd.zones) == 46
    assert len(gd.grids) == 538
    assert gd.grids.crs.to_epsg() == 4326


def test_district_is_the_source_outline(gd, metric):
    src = gpd.read_file(GEODATA / "source_district_wgs84.geojson").to_crs(METRIC).geometry.iloc[0]
    d = metric["district"].geometry.iloc[0]
    assert d.is_valid
    assert abs(d.area - src.area) / src.area < 1e-5
    assert d.symmetric_difference(src).area / src.area < 1e-5
    assert 850e6 < d.area < 875e6


@pytest.mark.parametrize("level", ["towns", "zones", "grids"])
def test_level_tiles_the_district(metric, level):
    d = metric["district"].geometry.iloc[0]
    geoms = np.asarray(metric[level].geometry.values)
    assert all(shapely.is_valid(geoms))
    assert all(shapely.get_type_id(geoms) == 3), "every unit should be a single Polygon"
    union = shapely.union_all(geoms)
    assert union.symmetric_difference(d).area / d.area < 0.001
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    ov = shapely.area(shapely.intersection(geoms[i[keep]], geoms[j[keep]]))
    assert keep.sum() > len(geoms)  # neighbours touch
    assert ov.max() <= 1.0, f"max overlap {ov.max():.2f} m²"


def _nesting(child, parent, col):
    p = parent.set_index("code").geometry
    parent_geoms = np.asarray(p.loc[child[col]].values)
    c = np.asarray(child.geometry.values)
    frac = shapely.area(shapely.intersection(c, parent_geoms)) / shapely.area(c)
    return frac


def test_grids_nest_in_zones_nest_in_towns(gd, metric):
    assert _nesting(metric["grids"], metric["zones"], "zone_code").min() >= 0.999
    assert _nesting(metric["zones"], metric["towns"], "town_code").min() >= 0.999
    z2t = dict(zip(gd.zones["code"], gd.zones["town_code"]))
    assert all(z2t[z] == t for z, t in zip(gd.grids["zone_code"], gd.grids["town_code"]))
    assert set(gd.zones["town_code"]) == set(gd.towns["code"])  # every town has a zone


def test_codes(gd):
    for level in ("towns", "zones", "grids", "hazards"):
        codes = getattr(gd, level)["code"]
        assert codes.is_unique, level
    assert all(re.fullmatch(r"330502-[A-Z]{2,3}", c) for c in gd.towns["code"])
    assert all(re.fullmatch(r"330502-[A-Z]{2,3}-\d{2}", c) for c in gd.zones["code"])
    assert all(re.fullmatch(r"330502-[A-Z]{2,3}-\d{2}-\d{2}", c) for c in gd.grids["code"])
    assert all(c.startswith(t + "-") for c, t in zip(gd.zones["code"], gd.zones["town_code"]))
    assert all(c.startswith(z + "-") for c, z in zip(gd.grids["code"], gd.grids["zone_code"]))
    assert all(re.fullmatch(r"HZ-\d{4}", c) for c in gd.hazards["code"])
    # numbering is contiguous from 01 inside every parent
    for parent, grp in gd.grids.groupby("zone_code"):
        nn = sorted(int(c.rsplit("-", 1)[1]) for c in grp["code"])
        assert nn == list(range(1, len(nn) + 1)), parent


def test_grids_per_zone_and_zone_properties(gd):
    per_zone = gd.grids.groupby("zone_code").size()
    assert per_zone.min() >= 8 and per_zone.max() <= 18
    assert 11.0 < per_zone.mean() < 12.5
    assert (gd.zones.set_index("code")["n_grids"] == per_zone.reindex(gd.zones["code"])).all()
    zones_per_town = gd.zones.groupby("town_code").size()
    assert zones_per_town.min() >= 1
    assert zones_per_town.idxmax() == "330502-ZL" and zones_per_town.max() >= 10
    assert gd.zones["dept_staff"].sum() >= 2000
    for col in ("chief", "deputy", "station_master"):
        assert gd.zones[col].str.len().min() >= 2
    assert gd.zones["station_name"].str.endswith("工作站").all()
    assert gd.zones["name"].str.endswith("片区").all()
    names = dict(zip(gd.zones["name"], gd.zones["town_code"]))
    assert names.get("潮音片区") in {"330502-LQ", "330502-YH"}
    assert names.get("晟舍片区") == "330502-ZL"
    assert names.get("道场片区") == "330502-DC"
    # stations inside their zones
    zg = gd.zones.geometry.values
    assert all(shapely.contains_xy(g, x, y) for g, x, y in zip(zg, gd.zones["station_lon"], gd.zones["station_lat"]))


def test_grid_attributes(gd, metric):
    g = gd.grids
    assert int(g["worker_full_time"].sum()) == 330
    assert g["worker_full_time"].dtype == bool
    assert 89_000 <= int(g["registered_units"].sum()) <= 91_500
    assert (g["registered_units"] >= 1).all()
    assert g["worker_stars"].between(1, 5).all()
    assert g["name"].str.contains("网格").all()
    # every grid has an English name, the pinyin of its village or community with the same kind and rank
    kinds = {"社区": "Community", "村": "Village"}
    for zh, en in zip(g["name"], g["name_en"]):
        m = re.fullmatch(r"(..)(社区|村)(?:第(\d+))?网格", zh)
        assert m, zh
        rank = f" {m.group(3)}" if m.group(3) else ""
        assert en == f"{place_en(m.group(1))} {kinds[m.group(2)]} Grid{rank}", (zh, en)
        assert re.fullmatch(r"[A-Z][a-z]+ (Community|Village) Grid( \d+)?", en), en
    # denser where people are: Zhili grids smaller and with more units per grid than rural towns
    area = metric["grids"].area / 1e6
    zl = g["town_code"] == "330502-ZL"
    rural = g["town_code"].isin(["330502-DX", "330502-MX", "330502-DL"])
    assert area[zl].median() < area[rural].median()
    assert g.loc[zl, "registered_units"].mean() > g.loc[rural, "registered_units"].mean()
    pop_by_town = g.groupby("town_code")["population"].sum()
    w = gd.towns.set_index("code")["population_weight"] * 1000
    assert (pop_by_town.reindex(w.index) == w).all()


def test_every_place_syllable_has_its_pinyin():
    assert set(PLACE_PINYIN) == set(PLACE_A) | set(PLACE_B)
    assert all(re.fullmatch(r"[a-z]+", p) for p in PLACE_PINYIN.values())
    assert not any(PLACE_PINYIN[b][0] in "aeo" for b in PLACE_B)  # joined without an apostrophe (Xi'an)
    assert place_en("新港") == "Xingang" and place_en("塘桥") == "Tangqiao"


def test_hazards(gd):
    h = gd.hazards
    counts = h["kind"].value_counts()
    assert 50 <= counts["hazchem"] <= 70 and 35 <= counts["gas_station"] <= 55
    assert 300 <= counts["sanheyi"] <= 400 and 60 <= counts["construction"] <= 100
    assert h["risk"].between(1, 4).all()
    assert (h["major"] == (h["risk"] == 4)).all()
    big = h["major"] & h["kind"].isin(["hazchem", "gas_station"])
    assert (h.loc[big, "ring_m"] == 500).all() and (h.loc[~big, "ring_m"] == 200).all()
    san = h[h["kind"] == "sanheyi"]
    assert (san["town_code"] == "330502-ZL").mean() > 0.6
    story = h[(h["kind"] == "hazchem") & (h["town_code"] == "330502-DC") & h["name"].str.contains("2019-04-24")]
    assert len(story) == 1 and bool(story["major"].iloc[0])
    # inside their grid (locator and plain geometry agree with the recorded codes)
    grid_geom = gd.grids.set_index("code").geometry
    assert all(grid_geom[c].contains(p) for c, p in zip(h["grid_code"], h.geometry))
    loc = gd.locator
    assert list(loc.locate_many(h.geometry.x, h.geometry.y)) == list(h["grid_code"])
    z = dict(zip(gd.grids["code"], gd.grids["zone_code"]))
    assert all(z[g] == zc for g, zc in zip(h["grid_code"], h["zone_code"]))


def test_geojson_format():
    for name in FILES:
        text = (GEODATA / name).read_text(encoding="utf-8")
        data = json.loads(text)
        assert data["type"] == "FeatureCollection" and "crs" not in data
        codes = [f["properties"]["code"] for f in data["features"]]
        assert codes == sorted(codes) or name == "hazards.geojson"
        # 6 decimals at most
        assert not re.search(r"\d\.\d{7,}", text)
    assert "吴兴区" in (GEODATA / "district.geojson").read_text(encoding="utf-8")  # ensure_ascii=False


def test_validate_layers_accepts_committed_and_flags_breakage(gd):
    rep = validate_layers(gd.district, gd.towns, gd.zones, gd.grids)
    assert rep.ok, rep.format()
    assert rep.stats["grid_count"] == 538 and rep.stats["grid_coverage_pct"] > 99.9
    bad = gd.grids.copy()
    bad.loc[1, "code"] = bad.loc[0, "code"]
    bad.loc[2, "geometry"] = bad.loc[2, "geometry"].buffer(0.003)
    rep = validate_layers(gd.district, gd.towns, gd.zones, bad)
    assert not rep.ok
    text = "\n".join(rep.errors)
    assert f"duplicate code {bad.loc[0, 'code']} in 2 features" in text
    assert "overlap" in text


def test_load_geodata_is_memoised_per_directory(gd):
    again = load_geodata(str(GEODATA) + "/")
    assert again is gd
    assert gd.locator is gd.locator


def test_build_is_deterministic_and_reproduces_committed_files(tmp_path):
    rep = build(tmp_path / "a", GEODATA)
    assert rep.ok, rep.format()
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (GEODATA / name).read_bytes(), name
