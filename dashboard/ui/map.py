"""The district map: basemaps (configurable tile URLs, a dark one, and none), boundary and point overlays."""
from __future__ import annotations

import dash_leaflet as dl

from ..i18n import t
from ..settings import Settings
from .layers import BOUNDARY_LAYERS, POINT_LAYERS, overlays, panes

CENTER = [30.80, 120.10]  # Wuxing District, roughly its centroid
ZOOM = 11


def basemaps(settings: Settings, lang: str, dark: bool = False) -> list:
    layers = []
    if settings.tiles_enabled:
        layers.append(dl.BaseLayer(
            dl.TileLayer(url=settings.tile_url, attribution=settings.tile_attribution, maxZoom=18),
            name=t("basemap_default", lang), checked=not dark, id="base-default"))
    if settings.tile_url_dark and settings.tile_url_dark.lower() != "none" and settings.tiles_enabled:
        layers.append(dl.BaseLayer(
            dl.TileLayer(url=settings.tile_url_dark, attribution=settings.tile_attribution, maxZoom=18),
            name=t("basemap_dark", lang), checked=dark, id="base-dark"))
    none_checked = not any(getattr(b, "checked", False) for b in layers)
    layers.append(dl.BaseLayer(dl.LayerGroup(), name=t("basemap_none", lang), checked=none_checked, id="base-none"))
    return layers


def district_map(settings: Settings, lang: str, map_id: str = "map", dark: bool = False, extra_overlays=(),
                 hideouts: dict | None = None, checked: dict | None = None, bounds=None) -> dl.Map:
    """The map with every registered layer. ``hideouts`` seeds layer styles (e.g. the initial choropleth) so
    the first paint needs no callback; ``checked`` overrides which overlays start visible; ``bounds``
    ([[south, west], [north, east]]) opens the map fitted to a unit instead of the whole district.

    The initial view is either ``center``/``zoom`` or ``bounds`` (with its centre but no zoom), never a ``viewport``: the map
    re-applies its ``zoom``/``center`` props right after mounting, which undid a ``viewport`` fit of a
    shared zone or grid link (the map stayed at district zoom)."""
    children = [
        *panes(),
        dl.LayersControl(
            basemaps(settings, lang, dark)
            + overlays(BOUNDARY_LAYERS, lang, dark, hideouts, checked)
            + overlays(POINT_LAYERS, lang, dark, hideouts, checked)
            + list(extra_overlays),
            id=f"{map_id}-layers", collapsed=False, position="topright"),
        dl.ScaleControl(position="bottomleft", imperial=False),
        # full screen: a control added by assets/dashboard_map.js for the whole map panel (legends included)
    ]
    if bounds:  # fitted to the unit; the centre (no zoom) only so that dash-leaflet's viewport tracking, which reads
        # the ``center`` prop on every move, has one (without it the first move threw "reading 'equals'")
        (s, w), (n, e) = bounds
        view = {"bounds": bounds, "boundsOptions": {"padding": [20, 20]}, "center": [(s + n) / 2, (w + e) / 2]}
    else:
        view = {"center": CENTER, "zoom": ZOOM}
    return dl.Map(children, id=map_id, minZoom=8, maxZoom=19, zoomSnap=0.25, style={"height": "100%", "width": "100%"},
                  **view)
