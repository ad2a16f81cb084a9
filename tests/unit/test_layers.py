"""The map's layer registry: which layers a map fetches when the user switches them on."""
from __future__ import annotations

from dashboard.i18n import t
from dashboard.ui import layers

MULTI = ("district", "city", "county", "town", "zone", "grid")


def test_a_layer_switched_on_is_fetched_once_and_a_multi_county_map_leaves_detail_to_the_zoom():
    shown = [t(s.label_key, "zh") for s in layers.BOUNDARY_LAYERS + layers.POINT_LAYERS if s.key in ("towns", "rings")]
    single = layers.lazy_urls("zh", shown, {})
    assert single == {"towns": "/api/geo/towns.json", "rings": "/api/map/rings.json"}
    assert layers.lazy_urls("zh", shown, {"towns": "/api/geo/towns.json"}) == {"rings": "/api/map/rings.json"}
    multi = layers.lazy_urls("zh", shown, {}, MULTI)
    assert multi == {"rings": "/api/map/rings.json"}  # towns come by the zoom, for the view's box only
    assert all(k not in layers.lazy_urls("en", [t(s.label_key, "en") for s in layers.BOUNDARY_LAYERS], {}, MULTI)
               for k in layers.DETAIL)


def test_a_multi_county_map_takes_its_outlines_by_the_zoom_and_its_detail_by_the_view():
    """The zoom ladder of the outlines (lod 1 below 8.5, 2 below 10, the view's box from 10), which layers follow
    the view (never fetched by their url), and the preloads of a multi-county page at its start zoom."""
    assert [layers.lod_for_zoom(z) for z in (6, 8.25, 8.5, 9.75, 10, 13)] == [1, 1, 2, 2, None, None]
    assert layers.lod_url("/api/geo/counties.json", 1) == "/api/geo/counties.json?lod=1"
    assert layers.lod_url("/api/geo/counties.json", None) == "/api/geo/counties.json"
    assert {k for k in ("district", "cities", "counties", "towns", "zones", "grids", "rings") if layers.managed(k)} \
        == {"district", "cities", "counties", "towns", "zones", "grids"}
    start = layers.start_urls()
    assert layers.start_urls_for(start, layers.SINGLE_LEVELS, 7) == start  # one county's map: as before
    province = layers.start_urls_for(start, MULTI, 7.25)
    assert province[:3] == ("/api/geo/cities.json?lod=1", "/api/geo/counties.json?lod=1",
                            "/api/geo/district.json?lod=1")
    assert not any(u.startswith(("/api/geo/zones", "/api/geo/grids", "/api/geo/towns", "/api/map/incidents.json"))
                   for u in province), province
    city = layers.start_urls_for(start, ("district", "county", "town", "zone", "grid"), 9.0)
    assert city[:2] == ("/api/geo/counties.json?lod=2", "/api/geo/district.json?lod=2")
    zoomed = layers.start_urls_for(start, MULTI, 10.5)  # past the coarse levels: the browser asks for its view's box
    assert not any(u.startswith("/api/geo/") for u in zoomed), zoomed
    fitted = layers.start_urls_for(start, MULTI, None)  # fitted by the browser: its zoom is not known here
    assert not any(u.startswith("/api/geo/") for u in fitted), fitted


def test_the_map_layers_of_a_multi_county_set_start_empty_and_say_how_they_follow_the_view():
    from dashboard.ui.map import district_map
    from dashboard.settings import Settings

    home = [[27.0, 118.0], [31.2, 123.0]]
    the_map = district_map(Settings(tile_url=""), "en", home=home, tiles=(), levels=MULTI)
    found = {}

    def walk(c):
        if getattr(c, "id", None) and str(c.id).startswith("geo-"):
            found[c.id] = c
        kids = getattr(c, "children", None)
        for k in (kids if isinstance(kids, (list, tuple)) else [kids] if kids is not None else []):
            walk(k)

    walk(the_map)
    for key in ("district", "cities", "counties", "towns", "zones", "grids"):
        layer = found[f"geo-{key}"]
        assert getattr(layer, "url", None) is None and layer.data == layers.EMPTY, key
        conf = layer.hideout.get("detail") or layer.hideout.get("lod")
        assert conf["url"] == f"/api/geo/{key}.json" and conf["name"] == t(f"layer_{key}", "en"), key
    assert found["geo-counties"].hideout["lod"]["zooms"] == list(layers.LOD_ZOOMS)
    from dashboard.api import geo

    for key in ("district", "cities", "counties"):  # the browser snaps the outlines' box to the server's lattice
        assert found[f"geo-{key}"].hideout["lod"]["bbox"]["step"] == geo.BBOX_STEPS[key] == geo.OUTLINE_BBOX_STEP
    assert found["geo-grids"].hideout["detail"]["zoom"] == layers.DETAIL["grids"]["zoom"]
    single = district_map(Settings(tile_url=""), "zh", home=home, tiles=())
    found.clear()
    walk(single)
    assert found["geo-district"].url == "/api/geo/district.json" and "lod" not in found["geo-district"].hideout


def _collection_bytes(geoms) -> int:
    import json

    import brotli
    from shapely.geometry import mapping

    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": mapping(g)}
                                                     for g in geoms]}
    return len(brotli.compress(json.dumps(fc, separators=(",", ":")).encode(), quality=9))


def test_coarse_outlines_of_the_province_s_counties_stay_a_valid_coverage_and_shrink_with_the_lod(root):
    """The 90 real county outlines of Zhejiang at lod 1 and 2: every outline valid and non-empty, the set still a
    coverage (shared borders shared: no gap, no overlap), coordinates on the 1e-4° grid, fewer bytes at each lower
    lod, and the area kept (islets under ~1 km² dropped at lod 1)."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from dashboard.api import geo

    src = gpd.read_file(root / "geodata" / "source_counties_wgs84.geojson").geometry.values
    full = geo._display_geometries("counties", type("G", (), {"counties": gpd.GeoDataFrame(geometry=src)})(), "wgs84")
    sizes = {"full": _collection_bytes(full)}
    for lod in (2, 1):
        out = np.asarray(geo.lod_geometries(src, lod))
        assert len(out) == len(src)
        assert shapely.is_valid(out).all() and not shapely.is_empty(out).any(), lod
        assert {g.geom_type for g in out} <= {"Polygon", "MultiPolygon"}
        assert shapely.coverage_is_valid(out), lod  # neighbours share their borders exactly
        xy = shapely.get_coordinates(out)
        assert np.abs(xy * 1e4 - np.round(xy * 1e4)).max() < 1e-6, lod
        assert abs(shapely.area(out).sum() - shapely.area(src).sum()) / shapely.area(src).sum() < 0.002, lod
        sizes[lod] = _collection_bytes(out)
    assert sizes[1] < sizes[2] < sizes["full"], sizes
    assert sizes[1] < 100_000, sizes  # the province's counties at its start zoom: well under the 300 KB budget


def test_rounding_a_coarse_outline_never_leaves_it_invalid():
    """A simplified outline with a notch that reaches within 1e-4° of its own edge: rounding its coordinates one by
    one folds the notch onto that edge (a ring touching itself: invalid); the lod outlines come out valid."""
    import numpy as np
    import shapely
    from shapely.geometry import Polygon

    from dashboard.api import geo

    notch = Polygon([(120.0, 30.0), (120.1, 30.0), (120.1, 30.05), (120.05, 30.00004), (120.0, 30.05)])
    assert notch.is_valid
    for lod in (1, 2):
        simplified = shapely.coverage_simplify(np.asarray([notch]), geo.LOD_TOLERANCE[lod], simplify_boundary=True)
        assert not shapely.set_precision(simplified, geo.LOD_GRID, mode="pointwise")[0].is_valid  # the hazard
        out = geo.lod_geometries([notch], lod)[0]
        assert out.is_valid and not out.is_empty and out.geom_type in ("Polygon", "MultiPolygon"), lod
        assert abs(out.area - notch.area) / notch.area < 0.01, lod
