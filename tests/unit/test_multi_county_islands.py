"""Island counties in a multi-county set: ``build --counties 嵊泗县 龙港市`` (two cities: the province is the root).

嵊泗县 is an archipelago (49 parts in the province file, the largest 76 km², 34 under 1 km²; 3 towns); 龙港市 a
coastal county with 4 parts (3 islets of under 0.1 km²). A town seat once landed on a small island that could
not hold its zones' grids (瑞安市: the province build stopped). Checked against the province file (the real
outlines and their parts), the committed seed district's density, and breakage that validation must catch."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from dashboard.geodata import load_geodata
from dashboard.geodata.county import catalogue
from tests.conftest import ROOT

GEODATA = ROOT / "geodata"
METRIC = "EPSG:32651"
COUNTIES = ["330383", "330922"]            # 龙港市 (温州市), 嵊泗县 (舟山市)
ARCHIPELAGO = "330922"
STEP_M = 0.12                              # one 1e-6° step, in metres


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from dashboard.geodata.__main__ import main

    out = tmp_path_factory.mktemp("islands")
    assert main(["build", "--counties", "嵊泗县", "龙港市", "--out", str(out), "-q", "--workers", "2"]) == 0
    return out


@pytest.fixture(scope="module")
def gd(built):
    return load_geodata(built)


@pytest.fixture(scope="module")
def real():
    """{code: the county's outline in the province file, metric}."""
    raw = {c.code: g for c, g in catalogue(GEODATA)}
    return {code: gpd.GeoSeries([raw[code]], crs="EPSG:4326").to_crs(METRIC).iloc[0] for code in COUNTIES}


def test_root_is_the_province_and_codes_nest(gd):
    root = gd.district.iloc[0]
    assert (root["code"], root["level"]) == ("330000", "province")
    assert sorted(gd.counties.code) == COUNTIES and sorted(gd.cities.code) == ["330300", "330900"]
    assert all(c[:4] == p[:4] for c, p in zip(gd.counties.code, gd.counties.city_code))
    for layer, parent, col in [(gd.towns, gd.counties, "district_code"), (gd.zones, gd.towns, "town_code"),
                               (gd.grids, gd.zones, "zone_code")]:
        assert layer.code.is_unique and set(layer[col]) == set(parent.code)
        assert all(c.startswith(p + "-") for c, p in zip(layer.code, layer[col]))


def test_grids_cover_every_island_of_the_real_outline(gd, real):
    """Outline − grids and grids − outline each within one 1e-6° step along the real boundary; every island of
    more than 0.01 km² is covered (none dropped), and small islands belong to a town seated elsewhere."""
    grids = gd.grids.to_crs(METRIC)
    for code in COUNTIES:
        ref = real[code]
        mine = grids[grids.district_code == code].geometry.values
        u = shapely.union_all(mine)
        allowed = STEP_M * ref.boundary.length
        assert shapely.difference(ref, u).area <= allowed, code
        assert shapely.difference(u, ref).area <= allowed, code
        parts = [p for p in shapely.get_parts(ref) if p.area > 1e4]
        assert len(parts) >= 2, code
        for p in parts:
            assert shapely.intersection(p, u).area >= 0.99 * p.area, (code, p.centroid)
    towns = gd.towns[gd.towns.district_code == ARCHIPELAGO].to_crs(METRIC)
    n_parts = len(shapely.get_parts(real[ARCHIPELAGO]))
    assert len(towns) < n_parts and max(len(shapely.get_parts(g)) for g in towns.geometry) > 1


def test_no_seat_on_a_small_island(gd, real):
    """Each seat lies in a part of the real outline of at least half a town's mean area, or in the largest."""
    from dashboard.geodata.county import SEAT_PART_SHARE

    for code in COUNTIES:
        towns = gd.towns[gd.towns.district_code == code]
        seats = gpd.GeoSeries(gpd.points_from_xy(towns.seat_lon, towns.seat_lat), crs="EPSG:4326").to_crs(METRIC)
        parts = shapely.get_parts(real[code])
        areas = shapely.area(parts)
        for s in seats:
            k = int(np.argmin(shapely.distance(parts, s)))
            assert areas[k] >= SEAT_PART_SHARE * real[code].area / len(towns) or areas[k] == areas.max(), code


def test_counts_in_proportion_to_area(gd, real):
    seed = load_geodata(GEODATA)
    density = len(seed.grids) / (seed.district.to_crs(METRIC).area.sum() / 1e6)   # grids per km², committed
    for code in COUNTIES:
        ideal = density * real[code].area / 1e6
        n = int((gd.grids.district_code == code).sum())
        assert abs(n - ideal) <= max(1.0, 0.02 * ideal), (code, n, ideal)
        assert all(8 <= k <= 18 for k in gd.zones[gd.zones.district_code == code].n_grids)


def test_validation_against_the_real_outlines_catches_breakage(built):
    from dashboard.geodata.io import read_multi_layers
    from dashboard.geodata.multi import reference_outlines, validate_multi

    layers = read_multi_layers(built)
    ref = reference_outlines(GEODATA)
    rep = validate_multi(layers, ref)
    assert rep.ok, rep.format()
    assert rep.stats["real_outlines_worst_share_of_tolerance"] <= 1.0
    # the grids of the archipelago's second island gone (its zones and towns shrunk with them): a gap
    grids, zones, towns = layers["grids"], layers["zones"], layers["towns"]
    parts = sorted(shapely.get_parts(ref[ARCHIPELAGO]), key=lambda p: -p.area)
    island = parts[1]
    on = grids.geometry.within(island.buffer(1e-4)) & (grids.district_code == ARCHIPELAGO)
    assert on.any()
    cut = {"grids": grids[~on]}
    for key, layer in (("zones", zones), ("towns", towns)):
        cut[key] = layer.assign(geometry=[shapely.difference(g, island.buffer(1e-4)) if not g.within(island.buffer(1e-4))
                                          else g for g in layer.geometry])
    rep = validate_multi(dict(layers, **cut), ref)
    assert any("uncovered" in e for e in rep.errors), rep.format()
    # a county that has no real outline
    assert any("no real outline" in e for e in validate_multi(layers, {k: v for k, v in ref.items()
                                                                       if k != ARCHIPELAGO}).errors)
    # a grid listed under another town than its zone's
    g2 = grids.copy()
    other = next(t for t in towns.code if t != g2.town_code.iloc[0] and t[:6] == g2.town_code.iloc[0][:6])
    g2.loc[g2.index[0], "town_code"] = other
    assert any("but its zone" in e for e in validate_multi(dict(layers, grids=g2), ref).errors)


def test_seat_parts_leave_small_islands_out():
    """The rule on its own: a one-part outline is returned as it is; of a mainland, a big island and a small
    one, the small one is left out unless every part is at least half a town's area."""
    from dashboard.geodata.county import seat_parts

    box = shapely.box
    one = box(0, 0, 20, 20)
    assert seat_parts(one, 5) is one
    mainland, big, small = box(0, 0, 20, 20), box(30, 0, 42, 12), box(22, 25, 24.5, 27.5)
    km = shapely.MultiPolygon([mainland, big, small])
    assert seat_parts(km, 6).equals(shapely.MultiPolygon([mainland, big]))   # half a town: 550 / 6 / 2 ≈ 46 km²
    assert seat_parts(km, 50).equals(km)                                      # 550 / 50 / 2 ≈ 5.5 km² < 6.25


@pytest.mark.parametrize("code", ["330381", "330921"])       # 瑞安市, 岱山县
def test_real_coasts_get_no_seat_on_a_small_island(code, monkeypatch):
    """On the real outlines the seats of k-means over every part land on islands of under 1 km² (瑞安市's made
    the province build fail); with the rule every seat is in a part of at least half a town's area."""
    from dashboard.geodata import county as C
    from dashboard.geodata.inputs import Frame, clean_outline
    from dashboard.geodata.validate import district_area_km2, expected_counts

    county, raw = next((c, g) for c, g in catalogue(GEODATA) if c.code == code)
    outline = clean_outline([raw])           # what the build uses (the province file is already a partition)
    n = expected_counts(district_area_km2(gpd.GeoDataFrame(geometry=[outline], crs="EPSG:4326")))["town"]
    frame = Frame(round(outline.centroid.x, 2), round(outline.centroid.y, 2))
    parts = shapely.get_parts(outline)
    km2 = shapely.area(shapely.transform(parts, frame.deg_to_km))

    def seat_part_areas():
        towns = C.synthetic_towns(county, outline, frame, n)
        seats = shapely.points(towns.seat_lon.to_numpy(), towns.seat_lat.to_numpy())
        return np.array([km2[int(np.argmin(shapely.distance(parts, s)))] for s in seats])

    assert seat_part_areas().min() >= C.SEAT_PART_SHARE * km2.sum() / n
    monkeypatch.setattr(C, "seat_parts", lambda km, n_towns: km)     # without the rule
    assert seat_part_areas().min() < 1.0


def test_apportion_keeps_total_and_bounds_for_very_unequal_weights():
    """Grids per zone (8–18): an archipelago's zones weigh very unequally (嵊泗县 got 102 grids for 100 when the
    greedy bounds left no zone free); every split must sum to the total within the bounds."""
    from dashboard.geodata.build import apportion

    rng = np.random.default_rng(7)
    for _ in range(1000):
        n = int(rng.integers(1, 12))
        w = rng.random(n) ** rng.choice([1, 4, 10])
        if rng.random() < 0.2:
            w[rng.integers(n)] = 0.0
        total = int(rng.integers(8 * n, 18 * n + 1))
        got = apportion(w, total, lo=8, hi=18)
        assert got.sum() == total and got.min() >= 8 and got.max() <= 18, (w, total, got)
    # in proportion where no bound binds
    assert list(apportion([1, 2, 3], 60, lo=8, hi=30)) == [10, 20, 30]
