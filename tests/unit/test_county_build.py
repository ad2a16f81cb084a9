"""``python -m dashboard.geodata build --county``: another county of the province file, built into a temp dir.

Checked against sources the build does not share: the seed district's committed geodata (its density: counts per
km²), the province file's outline of the county, and the seed district's own place names (none may appear)."""
from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from dashboard.geodata import load_geodata, validate_layers
from dashboard.geodata.county import CountyError, catalogue, find_county
from tests.conftest import OTHER_COUNTY, ROOT, build_county

GEODATA = ROOT / "geodata"
FILES = ["district.geojson", "towns.geojson", "zones.geojson", "grids.geojson", "hazards.geojson"]
METRIC = "EPSG:32651"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("county")
    stats = build_county(out)
    print(f"\n{OTHER_COUNTY} built in {stats['wall_seconds']:.1f} s")  # ~2 s here; the budget is 20 s
    return out, stats


@pytest.fixture(scope="module")
def gd(built):
    return load_geodata(built[0])


@pytest.fixture(scope="module")
def metric(gd):
    return {k: getattr(gd, k).to_crs(METRIC) for k in ("district", "towns", "zones", "grids")}


@pytest.fixture(scope="module")
def seed():
    """The committed seed district: counts and area (km²)."""
    s = load_geodata(GEODATA)
    area = s.district.to_crs(METRIC).area.sum() / 1e6
    return {"towns": len(s.towns), "zones": len(s.zones), "grids": len(s.grids), "area": area}


def test_the_outline_is_the_counties_real_one(gd, metric):
    src = gpd.read_file(GEODATA / "source_counties_wgs84.geojson")
    name = gd.district.iloc[0]["name"]
    assert gd.district.iloc[0]["code"] == OTHER_COUNTY
    mine = src[src["district"] == name].to_crs(METRIC).geometry.union_all()
    d = metric["district"].geometry.iloc[0]
    assert d.symmetric_difference(mine).area / mine.area < 1e-4


def test_counts_follow_the_seed_districts_density(gd, metric, seed):
    # counts are whole numbers: area × the seed's density rounded, so each is within 0.5 of it (the floors — one
    # town, one zone per town, 8–18 grids per zone — do not bind for this county: checked below)
    area = metric["district"].area.sum() / 1e6
    got = {"towns": len(gd.towns), "zones": len(gd.zones), "grids": len(gd.grids)}
    for level, n in got.items():
        exact = area * seed[level] / seed["area"]
        assert abs(n - exact) <= 0.5 + 1e-9, (level, n, exact)
    assert got["towns"] >= 2 and got["zones"] >= got["towns"]
    per_zone = gd.grids.groupby("zone_code").size()
    assert per_zone.between(8, 18).all()
    assert set(gd.zones["town_code"]) == set(gd.towns["code"])  # at least one zone per town


def test_levels_tile_the_outline_and_nest_exactly(gd, metric):
    d = metric["district"].geometry.iloc[0]
    for level in ("towns", "zones", "grids"):
        geoms = np.asarray(metric[level].geometry.values)
        assert all(shapely.is_valid(geoms)), level
        union = shapely.union_all(geoms)
        assert union.symmetric_difference(d).area / d.area < 0.001, level  # no gap, nothing outside
        tree = shapely.STRtree(geoms)
        i, j = tree.query(geoms, predicate="intersects")
        keep = i < j
        overlap = shapely.area(shapely.intersection(geoms[i[keep]], geoms[j[keep]]))
        assert overlap.max(initial=0) <= 1.0, (level, overlap.max())
    for child, parent, col in (("grids", "zones", "zone_code"), ("zones", "towns", "town_code")):
        p = metric[parent].set_index("code").geometry
        c = np.asarray(metric[child].geometry.values)
        frac = shapely.area(shapely.intersection(c, np.asarray(p.loc[metric[child][col]].values))) / shapely.area(c)
        assert frac.min() >= 0.999, (child, frac.min())
    rep = validate_layers(gd.district, gd.towns, gd.zones, gd.grids, strict=True)
    assert rep.ok, rep.format()


def test_codes_are_unique_and_under_the_countys_code(gd):
    for level in ("towns", "zones", "grids", "hazards"):
        assert getattr(gd, level)["code"].is_unique, level
    assert all(re.fullmatch(OTHER_COUNTY + r"-T\d{2}", c) for c in gd.towns["code"])
    assert all(c.startswith(t + "-") and re.fullmatch(r"\d{2}", c[len(t) + 1:])
               for c, t in zip(gd.zones["code"], gd.zones["town_code"]))
    assert all(c.startswith(z + "-") and re.fullmatch(r"\d{2}", c[len(z) + 1:])
               for c, z in zip(gd.grids["code"], gd.grids["zone_code"]))
    for layer in ("towns", "zones", "grids"):
        assert (getattr(gd, layer)["district_code"] == OTHER_COUNTY).all()
    z2t = dict(zip(gd.zones["code"], gd.zones["town_code"]))
    assert all(z2t[z] == t for z, t in zip(gd.grids["zone_code"], gd.grids["town_code"]))
    hz = gd.hazards
    assert list(gd.locator.locate_many(hz.geometry.x, hz.geometry.y)) == list(hz["grid_code"])


def test_names_are_the_countys_and_no_seed_place(built, gd):
    short = gd.district.iloc[0]["name"][:-1]
    assert gd.towns["name"].str.startswith(short).all() and gd.zones["name"].str.startswith(short).all()
    assert gd.district.iloc[0]["name_en"] is None  # the province file has no English name: none invented
    seeds = pd.read_csv(GEODATA / "source_towns.csv")
    from dashboard.geodata import names

    words = {"吴兴", "Wuxing", *(n.rstrip("街道镇乡") for n in seeds["name_zh"]), *seeds["name_en"],
             *(zh for stems in names.ZONE_STEMS.values() for zh, _ in stems)}
    seed_district = json.loads((GEODATA / "district.geojson").read_text(encoding="utf-8"))
    words.add(seed_district["features"][0]["properties"]["code"])
    for name in FILES:
        text = (built[0] / name).read_text(encoding="utf-8")
        found = sorted(w for w in words if w in text)
        assert not found, (name, found)


def test_the_build_is_deterministic(built, tmp_path):
    build_county(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (built[0] / name).read_bytes(), name


def test_counties_are_found_by_code_name_and_short_name():
    cat = catalogue(GEODATA)
    assert len(cat) == 90 and len({c.code for c, _ in cat}) == 90
    assert all(re.fullmatch(r"33\d{4}", c.code) for c, _ in cat)
    by_code, _ = find_county("330521", GEODATA)
    assert by_code.name == "德清县" and by_code.city == "湖州市"
    assert find_county("德清县", GEODATA)[0] == by_code == find_county("德清", GEODATA)[0]
    assert find_county("景宁", GEODATA)[0].name == "景宁畲族自治县"
    with pytest.raises(CountyError, match="candidates: 330106 杭州市西湖区"):
        find_county("西", GEODATA)
    with pytest.raises(CountyError, match="no county-level unit 'Nowhere'"):
        find_county("Nowhere", GEODATA)


def test_the_cli_refuses_an_unknown_county(capsys, tmp_path):
    from dashboard.geodata.__main__ import main

    assert main(["build", "--county", "湖州市", "--out", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "330521 湖州市德清县" in err and "330503 湖州市南浔区" in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_seed_districts_name_selects_the_default_inputs():
    from dashboard.geodata.build import build_inputs

    default = build_inputs(GEODATA)
    named = build_inputs(GEODATA, "吴兴")
    assert named.code == default.code and named.towns.equals(default.towns) and named.n_grids == default.n_grids
    other = build_inputs(GEODATA, "南浔")
    assert other.code == "330503" and other.story is None and not other.zone_stems
