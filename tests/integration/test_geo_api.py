"""Geometry routes: RFC 7946 collections, properties with parent codes, compression, ETag, caching."""
from __future__ import annotations

import gzip
import json

import pytest
import shapely
from shapely.geometry import shape
from tests.conftest import reading_client


@pytest.fixture
def client(settings):
    from dashboard import create_app

    return reading_client(create_app(settings, with_store=False).server)


@pytest.mark.parametrize("layer,count,parents", [
    ("district", 1, []),
    ("towns", 17, ["district_code"]),
    ("zones", 46, ["town_code", "district_code"]),
    ("grids", 538, ["zone_code", "town_code", "district_code"]),
])
def test_layer_collections(client, layer, count, parents):
    resp = client.get(f"/api/geo/{layer}.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    data = resp.get_json()
    assert data["type"] == "FeatureCollection" and "crs" not in data
    assert len(data["features"]) == count
    codes = [f["properties"]["code"] for f in data["features"]]
    assert len(set(codes)) == count
    for f in data["features"]:
        for key in ["code", "name", *parents]:
            assert f["properties"].get(key), (layer, key)
        geom = shape(f["geometry"])
        assert geom.is_valid and not geom.is_empty
        minx, miny, maxx, maxy = geom.bounds
        assert 119.5 < minx < maxx < 120.6 and 30.5 < miny < maxy < 31.1  # WGS84 lon/lat order
        # coordinates at most 6 decimals
        for x, y in shapely.get_coordinates(geom)[:20]:
            assert round(x, 6) == x and round(y, 6) == y


def test_display_simplification_keeps_neighbours_closed(client, root):
    """Simplified grids still tile the district: the union's area is the source area within 0.1 %."""
    import geopandas as gpd

    grids = client.get("/api/geo/grids.json").get_json()
    shown = gpd.GeoDataFrame.from_features(grids["features"], crs=4326).to_crs(32651)
    src = gpd.read_file(root / "geodata" / "district.geojson").to_crs(32651)
    union = shapely.union_all(shown.geometry.values)
    assert abs(union.area - src.geometry.area.sum()) / src.geometry.area.sum() < 0.001
    overlaps = shown.geometry.area.sum() - union.area
    assert overlaps < 1000  # m² over the whole district: no overlapping grids after simplification


def test_compressed_and_cacheable(client):
    resp = client.get("/api/geo/grids.json", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    raw = gzip.decompress(resp.data)
    assert len(json.loads(raw)["features"]) == 538
    assert len(resp.data) < len(raw) / 3
    etag = resp.headers["ETag"]
    again = client.get("/api/geo/grids.json", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_unknown_layer_is_a_json_404(client):
    resp = client.get("/api/geo/rivers.json")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["field"] == "layer"


def test_hazards_are_points_with_place(client):
    data = client.get("/api/geo/hazards.json").get_json()
    kinds = {f["properties"]["kind"] for f in data["features"]}
    assert {"hazchem", "gas_station", "sanheyi", "construction"} <= kinds
    for f in data["features"]:
        assert f["geometry"]["type"] == "Point"
        assert f["properties"]["grid_code"].startswith(f["properties"]["zone_code"])


def test_gcj02_tiles_shift_geometry(settings):
    """With TILE_CRS=gcj02 the served geometry moves by the GCJ-02 offset (~500 m here); WGS84 is untouched."""
    from dashboard import create_app
    from dashboard.geodata.crs import wgs84_to_gcj02

    plain = reading_client(create_app(settings, with_store=False).server).get("/api/geo/district.json").get_json()
    shifted = reading_client(create_app(settings.with_(tile_crs="gcj02"), with_store=False).server) \
        .get("/api/geo/district.json").get_json()
    a = shapely.get_coordinates(shape(plain["features"][0]["geometry"]))
    b = shapely.get_coordinates(shape(shifted["features"][0]["geometry"]))
    expect = wgs84_to_gcj02(a[:, 0], a[:, 1])
    assert abs(b[:, 0] - expect[0]).max() < 2e-6 and abs(b[:, 1] - expect[1]).max() < 2e-6
    assert abs(b - a).max() > 0.001


def test_bbox_gives_the_units_of_a_view(client):
    """``?bbox=``: the units whose box meets the view's box snapped outward to 0.05° (a multi-county map's level of
    detail); the same box in other words gives the same bytes; bad boxes and layers are a 400 naming bbox."""
    whole = client.get("/api/geo/grids.json").get_json()["features"]
    box = (120.05, 30.80, 120.12, 30.86)
    got = client.get("/api/geo/grids.json?bbox=" + ",".join(map(str, box))).get_json()["features"]
    snapped = (120.05, 30.80, 120.15, 30.90)
    expect = {f["properties"]["code"] for f in whole
              if shape(f["geometry"]).intersects(shapely.box(*snapped)) or shapely.box(*shape(f["geometry"]).bounds)
              .intersects(shapely.box(*snapped))}
    codes = {f["properties"]["code"] for f in got}
    assert 0 < len(codes) < len(whole) and codes == expect
    same = client.get("/api/geo/grids.json?bbox=120.12,30.86,120.051,30.801")  # other corners, same lattice cells
    assert {f["properties"]["code"] for f in same.get_json()["features"]} == codes
    import brotli

    url = "/api/geo/grids.json?bbox=" + ",".join(map(str, box))
    from backports import zstd

    # each encoding made when asked for; a browser taking several gets the quickest made (api/encoding.py)
    for enc, decode in (("zstd", zstd.decompress), ("br", brotli.decompress), ("gzip", gzip.decompress)):
        r = client.get(url, headers={"Accept-Encoding": enc})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == enc and r.mimetype == "application/json"
        assert json.loads(decode(r.data))["features"] == got
        assert client.get(url, headers={"Accept-Encoding": enc, "If-None-Match": r.headers["ETag"]}).status_code == 304
    assert client.get(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"}).headers["Content-Encoding"] == "zstd"
    assert client.get(url, headers={"Accept-Encoding": "gzip, br"}).headers["Content-Encoding"] == "br"
    assert client.get("/api/geo/grids.json?bbox=0,0,0,0").get_json()["features"] == []
    for q in ("bbox=1,2,3", "bbox=a,b,c,d", "bbox=119,29,122,32"):  # malformed, or wider than 2° for grids
        r = client.get("/api/geo/grids.json?" + q)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == "bbox", q
    r = client.get("/api/geo/hazards.json?bbox=120,30,120.1,30.1")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "bbox"


def test_a_single_county_has_no_county_or_city_layer(client):
    for layer in ("counties", "cities"):
        r = client.get(f"/api/geo/{layer}.json")
        assert r.status_code == 404 and "counties" not in r.get_json()["error"]["message"].split("one of")[1]


def test_a_county_without_an_english_name_is_sent_as_json_null(settings, tmp_path):
    """A multi-county set's counties with and without an English name (the province build names only the seed
    district in English): the layer is strict JSON (no ``NaN``), the missing name null, the given one kept."""
    import dataclasses

    from dashboard import create_app
    from dashboard.geodata import load_geodata
    from tests.regrouped import COUNTIES, write_regrouped

    gdir = write_regrouped(load_geodata(settings.geodata_dir), tmp_path / "geodata", with_cities=True)
    path = gdir / "counties.geojson"
    doc = json.loads(path.read_text(encoding="utf-8"))
    named = doc["features"][0]["properties"]["code"]
    for f in doc["features"]:  # one county named in English, the others without the key's value
        f["properties"]["name_en"] = "First County" if f["properties"]["code"] == named else None
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert load_geodata(gdir).counties["name_en"].isna().sum() == len(COUNTIES) - 1
    client = reading_client(create_app(dataclasses.replace(settings, geodata_dir=gdir), with_store=False).server)
    r = client.get("/api/geo/counties.json")
    assert r.status_code == 200

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    body = json.loads(r.get_data(as_text=True), parse_constant=refuse)
    names = {f["properties"]["code"]: f["properties"]["name_en"] for f in body["features"]}
    assert names[named] == "First County" and all(v is None for c, v in names.items() if c != named)


@pytest.fixture
def multi_client(settings, tmp_path):
    """The seed's towns regrouped as a province of three counties in two cities (tests/regrouped.py)."""
    import dataclasses

    from dashboard import create_app
    from dashboard.geodata import load_geodata
    from tests.regrouped import write_regrouped

    gdir = write_regrouped(load_geodata(settings.geodata_dir), tmp_path / "geodata", with_cities=True)
    return reading_client(create_app(dataclasses.replace(settings, geodata_dir=gdir), with_store=False).server)


@pytest.mark.parametrize("layer", ["counties", "cities", "district"])
def test_coarse_outlines_by_lod(multi_client, layer):
    """``?lod=1|2``: the same units with the same properties, valid outlines that still tile (shared borders shared),
    coordinates rounded to 1e-4°, fewer bytes at each lower lod; compressed and cacheable like the full layer."""
    import numpy as np

    full = multi_client.get(f"/api/geo/{layer}.json", headers={"Accept-Encoding": "br"})
    sizes = {"full": (len(full.data), len(multi_client.get(f"/api/geo/{layer}.json").data))}
    whole = multi_client.get(f"/api/geo/{layer}.json").get_json()["features"]
    area = sum(shape(f["geometry"]).area for f in whole)
    for lod in (2, 1):
        resp = multi_client.get(f"/api/geo/{layer}.json?lod={lod}", headers={"Accept-Encoding": "br"})
        assert resp.status_code == 200 and resp.mimetype == "application/json"
        assert resp.headers["Content-Encoding"] == "br" and resp.headers["ETag"] != full.headers["ETag"]
        again = multi_client.get(f"/api/geo/{layer}.json?lod={lod}", headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status_code == 304
        data = multi_client.get(f"/api/geo/{layer}.json?lod={lod}").get_json()
        assert [f["properties"] for f in data["features"]] == [f["properties"] for f in whole]
        geoms = np.asarray([shape(f["geometry"]) for f in data["features"]])
        assert shapely.is_valid(geoms).all() and not shapely.is_empty(geoms).any()
        assert shapely.coverage_is_valid(geoms)
        xy = shapely.get_coordinates(geoms)
        assert np.abs(xy * 1e4 - np.round(xy * 1e4)).max() < 1e-6
        assert abs(shapely.area(geoms).sum() - area) / area < 0.01
        sizes[lod] = (len(resp.data), len(multi_client.get(f"/api/geo/{layer}.json?lod={lod}").data))
    assert sizes[1][1] < sizes[2][1] < sizes["full"][1], sizes  # raw JSON
    assert sizes[1][0] <= sizes[2][0] <= sizes["full"][0], sizes  # brotli


@pytest.mark.parametrize("margin", [None, 0.0])
def test_the_outlines_of_a_view_by_bbox(multi_client, monkeypatch, margin):
    """``?bbox=`` on the outlines (a multi-county map zoomed in past the coarse levels): the counties and cities whose
    box meets the view's box snapped outward to 0.5°, as the full layer draws them cut to that box and half a degree
    around it (whole where they lie inside); the root as its boundary cut to that box — lines, none outside it, as
    long as the boundary is inside it. The test set's units fit in the margin; with none, they are cut."""
    import numpy as np

    from dashboard.api import geo

    if margin is not None:
        monkeypatch.setattr(geo, "OUTLINE_CLIP_MARGIN", margin)
    box = (120.02, 30.81, 120.11, 30.87)
    snapped = shapely.box(120.0, 30.5, 120.5, 31.0)
    m = geo.OUTLINE_CLIP_MARGIN
    clip = shapely.box(120.0 - m, 30.5 - m, 120.5 + m, 31.0 + m)
    cut_any = False
    for layer in ("counties", "cities"):
        whole = multi_client.get(f"/api/geo/{layer}.json").get_json()["features"]
        got = multi_client.get(f"/api/geo/{layer}.json?bbox=" + ",".join(map(str, box))).get_json()["features"]
        expect = [f for f in whole if shapely.box(*shape(f["geometry"]).bounds).intersects(snapped)]
        # the same units, in the same order, with the same properties
        assert [f["properties"] for f in got] == [f["properties"] for f in expect] and 0 < len(got), layer
        for g, w in zip(got, expect):
            a, full = shape(g["geometry"]), shape(w["geometry"])
            assert clip.buffer(1e-6).contains(a), (layer, g["properties"]["code"])
            want = full.intersection(clip)
            assert abs(a.area - want.area) <= 1e-6 * max(want.area, 1e-9) + 1e-9, (layer, g["properties"]["code"])
            assert a.symmetric_difference(want).area < 1e-7, (layer, g["properties"]["code"])
            if clip.contains(full):
                assert g == w  # inside: the layer's own feature, as it is
            else:
                cut_any = True
                assert a.area < full.area
            xy = shapely.get_coordinates(a)
            assert np.abs(xy * 1e6 - np.round(xy * 1e6)).max() < 1e-3
        far = multi_client.get(f"/api/geo/{layer}.json?bbox=100,10,100.1,10.1").get_json()["features"]
        assert far == []
    assert cut_any == (margin == 0.0)  # none cut with the margin (the set is small), some without
    root = shape(multi_client.get("/api/geo/district.json").get_json()["features"][0]["geometry"])
    data = multi_client.get("/api/geo/district.json?bbox=" + ",".join(map(str, box))).get_json()
    assert len(data["features"]) == 1
    cut = shape(data["features"][0]["geometry"])
    assert cut.geom_type in ("LineString", "MultiLineString")
    assert snapped.buffer(1e-6).contains(cut)
    inside = root.boundary.intersection(snapped)
    assert 0 < inside.length and abs(cut.length - inside.length) / inside.length < 1e-3
    xy = shapely.get_coordinates(cut)
    assert np.abs(xy * 1e6 - np.round(xy * 1e6)).max() < 1e-3
    assert multi_client.get("/api/geo/district.json?bbox=100,10,100.1,10.1").get_json()["features"] == []
    wide = multi_client.get("/api/geo/counties.json?bbox=110,20,125,35")
    assert wide.status_code == 400 and wide.get_json()["error"]["field"] == "bbox"


def test_a_bad_lod_is_a_400_naming_it(multi_client, client):
    for q in ("counties.json?lod=3", "counties.json?lod=0", "counties.json?lod=x", "cities.json?lod=1.5",
              "district.json?lod=-1", "grids.json?lod=1", "zones.json?lod=2&bbox=120,30.8,120.1,30.9"):
        r = multi_client.get("/api/geo/" + q)
        assert r.status_code == 400, q
        err = r.get_json()["error"]
        assert err["field"] == "lod" and err["code"] == "invalid_value" and "lod" in err["message"], (q, err)
    assert "1 or 2" in multi_client.get("/api/geo/counties.json?lod=9").get_json()["error"]["message"]
    assert "district, cities, counties" in multi_client.get("/api/geo/towns.json?lod=1").get_json()["error"]["message"]
    # one county's outline comes coarse too; its absent layers stay a 404
    assert client.get("/api/geo/district.json?lod=1").status_code == 200
    assert client.get("/api/geo/counties.json?lod=1").status_code == 404


def test_a_worker_warms_its_geodata_memos_before_the_first_viewer(settings, tmp_path):
    """``dashboard.warm`` (a gunicorn worker's start): on a multi-county set the units' features the map's views are
    cut from are built there, so the first bbox answer builds nothing; a one-county set has no such layers to warm."""
    import dataclasses

    from dashboard import create_app
    from dashboard.api import geo
    from dashboard.geodata import load_geodata
    from dashboard.metrics import views
    from dashboard.warm import warm, warm_in_background
    from tests.regrouped import write_regrouped

    gdir = write_regrouped(load_geodata(settings.geodata_dir), tmp_path / "geodata", with_cities=True)
    app = create_app(dataclasses.replace(settings, geodata_dir=gdir), with_store=False)
    before = geo._features_memo.cache_info().misses
    outlines_before = geo._outline_memo.cache_info().misses
    import gc

    gc.unfreeze()
    try:
        took = warm_in_background(app)
        took.join(timeout=120)
        assert not took.is_alive()
        # and then the worker's heap frozen: what the warm-up built is out of the collector's full passes
        assert gc.get_freeze_count() > 10_000
        frozen = set(map(id, gc.get_objects(generation=2)))
        assert id(views.hierarchy(app.server.extensions["dashboard"].geodata())) not in frozen
    finally:
        gc.unfreeze()  # this test process is not a worker
    built = geo._features_memo.cache_info().misses - before
    assert built == len(geo.BBOX_LAYERS) - 1  # cities, counties, towns, zones and grids of this set, once each
    assert geo._outline_memo.cache_info().misses - outlines_before == 1  # and the root's boundary
    again = warm(app)
    assert {f"features:{k}" for k in geo.BBOX_LAYERS} <= set(again) and "hierarchy" in again
    assert geo._features_memo.cache_info().misses - before == built  # nothing built twice
    assert geo._outline_memo.cache_info().misses - outlines_before == 1
    r = reading_client(app.server).get("/api/geo/district.json?bbox=120.05,30.80,120.15,30.90")
    assert r.status_code == 200 and geo._outline_memo.cache_info().misses - outlines_before == 1
    r = reading_client(app.server).get("/api/geo/grids.json?bbox=120.05,30.80,120.15,30.90")
    assert r.status_code == 200 and r.get_json()["features"]
    assert geo._features_memo.cache_info().misses - before == built  # the first answer was cut from the memo
    single = warm(create_app(settings, with_store=False))
    assert "hierarchy" in single and not any(k.startswith("features:") for k in single)
    # a unit's profile (its staff, its hazard sites) reads its rows by the indexes the warm-up built
    gd = app.server.extensions["dashboard"].geodata()
    h = views.hierarchy(gd)
    assert "row_indexes" in again and h.grid_pos
    misses = views.rows_of.cache_info().misses
    zone, county = sorted(gd.zones["code"])[5], h.codes("county")[1]
    assert views.zone_staff(gd, zone)["n_grids"] == len(h.kids("zone", zone))
    assert views.hazards_of(gd, "county", county)["total"] == int(
        gd.hazards["town_code"].isin(h.towns_of("county", county)).sum())
    assert views.rows_of.cache_info().misses == misses
