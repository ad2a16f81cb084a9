"""``python -m dashboard.geodata build --counties / --city / --province``: several counties in one layered set.

Built once per module in a temp dir (上城区 + 拱墅区 + 滨江区, three small neighbours of 杭州市, ~180 grids) through
the CLI, then checked against sources the build does not share: the province file's outlines, the committed seed
district's density, a single ``--county`` build of one of them, a second (serial) build, and the committed Wuxing
files for the seed district built by a worker."""
from __future__ import annotations

import json
from itertools import combinations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from dashboard.geodata import load_geodata
from dashboard.geodata.county import CountyError, catalogue
from tests.conftest import ROOT

GEODATA = ROOT / "geodata"
METRIC = "EPSG:32651"
COUNTIES = ["330102", "330105", "330108"]          # 上城区, 拱墅区, 滨江区: neighbours
SINGLE = "330108"
FILES = ["district.geojson", "cities.geojson", "counties.geojson", "towns.geojson", "zones.geojson",
         "grids.geojson", "hazards.geojson"]


def _features(path):
    return [ln.rstrip(",") for ln in path.read_text(encoding="utf-8").split("\n")[1:-2]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from dashboard.geodata.__main__ import main

    out = tmp_path_factory.mktemp("multi")
    assert main(["build", "--counties", "上城区", "拱墅区,滨江区", "--out", str(out), "-q", "--workers", "2"]) == 0
    return out


@pytest.fixture(scope="module")
def gd(built):
    return load_geodata(built)


@pytest.fixture(scope="module")
def province_file():
    src = gpd.read_file(GEODATA / "source_counties_wgs84.geojson")
    codes = [c.code for c, _ in catalogue(GEODATA)]
    return src.assign(code=codes)


def test_layers_root_and_codes(gd):
    assert gd.multi and not load_geodata(GEODATA).multi and load_geodata(GEODATA).counties is None
    assert sorted(gd.counties.code) == COUNTIES
    assert list(gd.cities.code) == ["330100"] and list(gd.cities.name) == ["杭州市"]
    root = gd.district.iloc[0]
    assert (root["code"], root["name"], root["level"]) == ("330100", "杭州市", "city")
    assert set(gd.counties.city_code) == {"330100"}
    for layer, parent_layer, col in [(gd.towns, gd.counties, "district_code"), (gd.zones, gd.towns, "town_code"),
                                     (gd.grids, gd.zones, "zone_code")]:
        assert layer.code.is_unique
        assert set(layer[col]) == set(parent_layer.code)         # every parent has children, no unknown parent
        assert all(c.startswith(p + "-") for c, p in zip(layer.code, layer[col]))
    assert gd.hazards.code.is_unique
    assert all(c.startswith(t[:6] + "-HZ-") for c, t in zip(gd.hazards.code, gd.hazards.town_code))


def test_the_set_validates_and_validation_catches_breakage(built):
    from dashboard.geodata.io import read_multi_layers
    from dashboard.geodata.multi import validate_multi

    layers = read_multi_layers(built)
    rep = validate_multi(layers)
    assert rep.ok, rep.format()
    # a missing grid is a gap: its zone no longer equals the union of its grids
    broken = dict(layers, grids=layers["grids"].iloc[1:])
    assert any("differs from the union of its grid" in e for e in validate_multi(broken).errors)
    # a zone code not prefixed by its town's
    zones = layers["zones"].copy()
    zones.loc[zones.index[0], "code"] = "330199-T01-01"
    assert any("not prefixed" in e for e in validate_multi(dict(layers, zones=zones)).errors)
    # a county grown into its neighbour overlaps it
    counties = layers["counties"].copy()
    counties.loc[counties.index[0], "geometry"] = counties.geometry.iloc[0].buffer(0.002)
    assert any("overlap" in e for e in validate_multi(dict(layers, counties=counties)).errors)


def test_counties_are_the_real_outlines(gd, province_file):
    m = gd.counties.to_crs(METRIC)
    src = province_file.set_index("code").to_crs(METRIC)
    for code, geom in zip(m.code, m.geometry):
        real = src.loc[code].geometry
        assert geom.symmetric_difference(real).area / real.area < 1e-5, code


def test_counts_per_county_in_proportion_to_area(gd):
    seed = load_geodata(GEODATA)
    density = len(seed.grids) / (seed.district.to_crs(METRIC).area.sum() / 1e6)   # grids per km², committed
    areas = gd.counties.to_crs(METRIC).set_index("code").area / 1e6
    for code, area in areas.items():
        n = int((gd.grids.district_code == code).sum())
        assert abs(n - density * area) <= max(1.0, 0.02 * density * area), (code, n, density * area)
        zones = gd.zones[gd.zones.district_code == code]
        assert all(8 <= k <= 18 for k in zones.n_grids)


def test_every_level_is_the_union_of_the_next(gd):
    """Root = cities = counties = towns = zones = grids, each within one 1e-6° step along its boundary."""
    m = {k: getattr(gd, k).to_crs(METRIC) for k in ("district", "cities", "counties", "towns", "zones", "grids")}
    step = 0.12   # metres: one 1e-6° step
    chain = [("district", "cities", None), ("cities", "counties", "city_code"), ("counties", "towns", "district_code"),
             ("towns", "zones", "town_code"), ("zones", "grids", "zone_code")]
    for parent, child, col in chain:
        for code, geom in zip(m[parent].code, m[parent].geometry):
            kids = m[child] if col is None else m[child][m[child][col] == code]
            diff = shapely.union_all(kids.geometry.values).symmetric_difference(geom).area
            assert diff <= step * geom.boundary.length, (parent, code, diff)
        # siblings: the children's areas add up to their union's (no overlap beyond rounding)
        total = m[child].area.sum()
        assert abs(total - shapely.union_all(m[child].geometry.values).area) <= step * m[child].length.sum()


def test_shared_borders_between_neighbouring_counties_match(gd):
    counties = gd.counties.set_index("code").geometry
    shared = 0
    for a, b in combinations(COUNTIES, 2):
        A, B = counties[a], counties[b]
        if not A.intersects(B):
            continue
        assert shapely.intersection(A, B).area == 0.0, (a, b)     # no overlap at all, in degrees
        line_a = A.boundary.intersection(B.buffer(2e-6))
        line_b = B.boundary.intersection(A.buffer(2e-6))
        assert line_a.length > 0.01                               # neighbours along > ~1 km
        assert abs(line_a.length - line_b.length) / line_a.length < 1e-3
        assert shapely.hausdorff_distance(line_a, line_b) <= 3e-6  # the same line on both sides (~0.3 m)
        shared += 1
        # the grids on either side meet along it: no gap, no overlap wider than rounding
        ga = shapely.union_all(gd.grids[gd.grids.district_code == a].geometry.values)
        gb = shapely.union_all(gd.grids[gd.grids.district_code == b].geometry.values)
        both = shapely.union(A, B)
        assert shapely.difference(both, shapely.union(ga, gb)).area <= 2e-6 * both.boundary.length
        assert shapely.intersection(ga, gb).area <= 2e-6 * line_a.length
    assert shared >= 2


def test_a_county_is_its_single_build(built, tmp_path):
    from dashboard.geodata.build import build

    assert build(tmp_path, GEODATA, county=SINGLE).ok
    for name in ("towns.geojson", "zones.geojson", "grids.geojson"):
        mine = [ln for ln in _features(built / name) if f'"code":"{SINGLE}-' in ln]
        assert mine and mine == _features(tmp_path / name), name
    county = json.loads(_features(built / "counties.geojson")[COUNTIES.index(SINGLE)])
    single = json.loads(_features(tmp_path / "district.geojson")[0])
    assert county["geometry"] == single["geometry"]


def test_same_bytes_twice_serial_or_pooled(built, tmp_path):
    from dashboard.geodata.multi import build_many

    assert build_many(tmp_path, GEODATA, counties=list(reversed(COUNTIES)), workers=1).ok
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (built / name).read_bytes(), name


def test_the_seed_district_in_a_multi_build_is_the_committed_one():
    """A worker builds the seed district with its real seats: the committed files, 17 / 46 / 538."""
    from dashboard.geodata.multi import _build_one

    seed = next(c for c, _ in catalogue(GEODATA) if c.code == "330502")
    code, texts, rep, _ = _build_one((seed, None, str(GEODATA)))
    assert rep.ok
    for level in ("district", "towns", "zones", "grids", "hazards"):
        assert texts[level] == (GEODATA / f"{level}.geojson").read_text(encoding="utf-8"), level


def test_partition_rules():
    """Overlaps go to the fixed county, then to the lower code; a sliver goes to the longest border (never
    to a fixed county); the real province file is already a partition (nothing changes)."""
    from dashboard.geodata.inputs import clean_outline
    from dashboard.geodata.multi import partition, partition_outlines

    box = shapely.box
    seed = box(0, 0, 0.01, 0.01)
    a = box(0.009, 0, 0.02, 0.01)                  # overlaps the fixed seed by 0.001
    b = box(0, 0.01, 0.0201, 0.02)                 # overlaps a? no: touches; overlaps c
    c = box(0.02, 0, 0.03, 0.0105)                 # overlaps b (lower code wins) and leaves nothing to a
    hole_maker = box(0.0, -0.01, 0.03, 0.0)        # below: touches seed, a, c
    geoms, changes = partition([seed, a, b, c, hole_maker], ["1", "2", "3", "4", "5"], fixed=("1",))
    assert geoms[0].equals(seed)
    assert geoms[1].equals(box(0.01, 0, 0.02, 0.01))
    assert shapely.intersection(geoms[2], geoms[3]).area == 0 and geoms[2].equals(b)
    assert "2" in changes and "4" in changes and "1" not in changes
    # a sliver between 2 and 4 that neither covers: it goes to the one with the longer border
    g2 = box(0.01, 0, 0.0199, 0.01)                # borders the sliver along 0.01
    g4 = box(0.02, 0.003, 0.03, 0.01)              # along 0.007 (the fixed frame along the rest)
    frame = shapely.union_all([box(0.0, -0.01, 0.04, 0.0), box(0.0, 0.01, 0.04, 0.02), box(0.03, 0.0, 0.04, 0.01),
                               box(0.0, 0.0, 0.01, 0.01), box(0.02, 0.0, 0.03, 0.003)])
    geoms, changes = partition([frame, g2, g4], ["1", "2", "4"], fixed=("1",))
    assert geoms[0].equals(frame) and geoms[2].equals(g4)
    assert geoms[1].equals(box(0.01, 0, 0.02, 0.01)) and list(changes) == ["2"]
    # the real file: every outline is its cleaned self
    raw = {c.code: g for c, g in catalogue(GEODATA)}
    for c, g in partition_outlines(GEODATA):
        if c.code != "330502":
            assert g.equals_exact(clean_outline([raw[c.code]]), 0), c.code


def test_selection_and_cli_refusals(capsys):
    from dashboard.geodata.__main__ import main
    from dashboard.geodata.multi import select_counties

    chosen, root = select_counties(GEODATA, city="湖州")
    assert [c.code for c in chosen] == ["330502", "330503", "330521", "330522", "330523"]
    assert root == ("city", "330500", "湖州市")
    chosen, root = select_counties(GEODATA, counties=["德清", "330102"])
    assert root == ("province", "330000", "浙江省")
    assert len(select_counties(GEODATA, province=True)[0]) == len(catalogue(GEODATA)) == 90
    with pytest.raises(CountyError):
        select_counties(GEODATA, counties=[])
    assert main(["build", "--city", "湖洲市", "--out", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err
    assert "湖州市" in err and "candidates" in err
    assert main(["build", "--counties", "上城区", "西", "--out", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err
    assert "西湖区" in err and "candidates" in err
    assert main(["build", "--county", "德清", "--city", "湖州市", "--out", "/nonexistent/x"]) == 2
    assert main(["build", "--city", "湖州市"]) == 2                            # never into the committed geodata/
    assert main(["build", "--city", "湖州市", "--out", str(GEODATA)]) == 2
    assert "--out DIR" in capsys.readouterr().err


def test_a_single_build_over_a_multi_set_is_a_single_set(built, tmp_path):
    import shutil

    from dashboard.geodata.build import build

    shutil.copytree(built, tmp_path / "set")
    assert build(tmp_path / "set", GEODATA, county=SINGLE).ok
    assert not (tmp_path / "set" / "counties.geojson").exists() and not (tmp_path / "set" / "cities.geojson").exists()
    assert not load_geodata(tmp_path / "set").multi


def test_too_few_cells_retries_with_denser_cells(monkeypatch):
    """象山县's island zones once had fewer base cells than grids (the province build stopped there): the build
    tries again with denser cells, then with small zones joined; a build that succeeds at once is not touched."""
    from dashboard.geodata import build as B
    from dashboard.geodata.inputs import seed_inputs

    inp = seed_inputs(GEODATA)
    asked = []

    def fake(i, verbose=False, island_fix=False):
        asked.append((i.n_base_points, island_fix))
        if len(asked) < 3:
            raise B.TooFewCells("zone 1 has 7 cells for 8 grids")
        return {"ok": i.n_base_points}

    monkeypatch.setattr(B, "_generate", fake)
    assert B.generate(inp) == {"ok": round(inp.n_base_points * B.DENSER[1])}
    assert asked == [(inp.n_base_points, False)] + [(round(inp.n_base_points * f), False) for f in B.DENSER[:2]]

    def never(i, verbose=False, island_fix=False):
        asked.append((i.n_base_points, island_fix))
        raise B.TooFewCells("zone 1 has 3 cells for 8 grids")

    asked.clear()
    monkeypatch.setattr(B, "_generate", never)
    with pytest.raises(B.TooFewCells):
        B.generate(inp)
    assert asked[-1] == (inp.n_base_points, True) and len(asked) == 2 + len(B.DENSER)   # last: small zones joined


def test_a_small_island_zone_joins_its_nearest_neighbour():
    """The last resort (岱山县, 瑞安市: an island zone of 3–5 cells even at 3× the cells): the small zone joins the
    nearest zone of its town, the town's biggest zone is halved, the number of zones stays."""
    from dashboard.geodata.build import _merge_small_zones

    rng = np.random.default_rng(1)
    main = rng.uniform(0, 10, (300, 2))
    island = np.array([[30.0, 5.0], [30.5, 5.2], [30.2, 4.8]])
    xy = np.vstack([main, island])
    lab = np.where(xy[:, 0] < 5, 0, 1)
    lab[-3:] = 2
    zone_town = np.array([0, 0, 0])
    out = _merge_small_zones(lab, zone_town, xy, min_cells=24)
    counts = np.bincount(out, minlength=3)
    assert len(set(out)) == 3 and counts.min() >= 24 and counts.sum() == len(xy)
    assert len(set(out[-3:])) == 1 and out[-3] == 1 and (out[:300][xy[:300, 0] >= 5] == 1).any()  # the nearest
    assert np.array_equal(_merge_small_zones(lab, zone_town, xy), out)                            # deterministic
