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
