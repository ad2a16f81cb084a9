"""The district map: basemaps (tile URLs of a host or of this app's local basemap file, a dark one, and none),
boundary and point overlays."""
from __future__ import annotations

import math
from typing import Sequence

import dash_leaflet as dl

from ..domain.basemap import Basemap
from ..i18n import t
from ..settings import Settings
from .layers import SINGLE_LEVELS, POINT_LAYERS, absent_layers, boundary_layers, overlays, panes

VIEW_PX = (800, 600)  # the map panel's size the whole-district view is fitted to (the smaller screens' panel)


def home_view(home, min_zoom: int = 8) -> dict:
    """``center``/``zoom`` showing ``home`` ([[south, west], [north, east]], the root unit's bounds from the
    geodata) on a map panel of ``VIEW_PX``: the largest quarter zoom (the map's ``zoomSnap``) at which it fits,
    between 8 and 16."""
    (s, w), (n, e) = home
    lat = (s + n) / 2
    fit_x = math.log2(VIEW_PX[0] * 360 / (256 * max(e - w, 1e-6)))
    fit_y = math.log2(VIEW_PX[1] * 360 / (256 * max(n - s, 1e-6) / math.cos(math.radians(lat))))
    return {"center": [round(lat, 6), round((w + e) / 2, 6)],
            "zoom": max(min_zoom, min(16, math.floor(4 * min(fit_x, fit_y)) / 4))}


MULTI_MIN_ZOOM = 6  # a province fits at about 7 on the smaller screens' panel


def start_zoom(home, levels: Sequence[str] = SINGLE_LEVELS) -> float:
    """The zoom a map opened on the whole root (``home``, :func:`home_view`) starts at, for a set with ``levels``."""
    return home_view(home, MULTI_MIN_ZOOM if "county" in levels else 8)["zoom"]

BASEMAP_LABELS = {"base": "basemap_default", "dark": "basemap_dark"}


def _tile_layer(b: Basemap) -> dl.TileLayer:
    kw = {"minZoom": b.min_zoom, "maxZoom": b.max_zoom, "maxNativeZoom": b.max_native_zoom}
    if b.min_native_zoom is not None:
        kw["minNativeZoom"] = b.min_native_zoom
    if b.bounds is not None:
        kw["bounds"] = [list(b.bounds[0]), list(b.bounds[1])]
    return dl.TileLayer(url=b.url, attribution=b.attribution, **kw)


def basemaps(tiles: Sequence[Basemap], lang: str, dark: bool = False) -> list:
    """The basemap choices: each of ``tiles`` (``services.tiles.basemaps``) and "none". The dark one starts checked
    on a dark page, else the standard one (a dark page without a dark basemap shows the standard one)."""
    by_key = {b.key: b for b in tiles}
    start = "dark" if dark and "dark" in by_key else "base" if "base" in by_key else None
    layers = [dl.BaseLayer(_tile_layer(b), name=t(BASEMAP_LABELS[b.key], lang), checked=b.key == start,
                           id=f"base-{'default' if b.key == 'base' else b.key}")
              for b in tiles]
    layers.append(dl.BaseLayer(dl.LayerGroup(), name=t("basemap_none", lang), checked=start is None, id="base-none"))
    return layers


def district_map(settings: Settings, lang: str, map_id: str = "map", dark: bool = False, extra_overlays=(),
                 hideouts: dict | None = None, checked: dict | None = None, bounds=None, *,
                 home, tiles: Sequence[Basemap], levels: Sequence[str] = SINGLE_LEVELS) -> dl.Map:
    """The map with every registered layer. ``tiles``: its raster basemaps (``services.tiles.basemaps``; never
    derived here, so no page can fall back to a tile host when the app serves a local file). ``hideouts`` seeds
    layer styles (e.g. the initial choropleth) so the first paint needs no callback; ``checked`` overrides which overlays start visible; ``bounds``
    ([[south, west], [north, east]]) opens the map fitted to a unit instead of the whole district; ``home`` is the
    whole district's bounds (``services.units.root_bounds``: the geodata's, no place is built in here).

    The initial view is either ``center``/``zoom`` or ``bounds`` (with its centre but no zoom), never a ``viewport``: the map
    re-applies its ``zoom``/``center`` props right after mounting, which undid a ``viewport`` fit of a
    shared zone or grid link (the map stayed at district zoom).

    ``levels``: the set's (``Hierarchy.levels``). A city's or the province's set also draws its counties (and
    cities), opens at a lower zoom, and fetches towns, zones and grids only when zoomed in far enough, the grids and
    zones of the view only (``ui.layers.DETAIL``, ``assets/dashboard_map.js`` ``wx.map.detail``); its incident overlay
    holds the cells' layer too (``ui.layers.incident_view``: counts per cell until zoomed in on few enough)."""
    multi = "county" in levels
    layers = (basemaps(tiles, lang, dark) + overlays(boundary_layers(levels), lang, dark, hideouts, checked,
                                                     detail=multi)
              + overlays(POINT_LAYERS, lang, dark, hideouts, checked, detail=multi) + list(extra_overlays))
    children = [
        *panes(),
        *absent_layers(levels),
        # what the control reports when it mounts (its checked layers, in order), given from the start: the report
        # then changes nothing and asks no callback (callbacks.map) for the layers the page already shows
        dl.LayersControl(layers, id=f"{map_id}-layers", collapsed=False, position="topright",
                         overlays=[c.name for c in layers if isinstance(c, dl.Overlay) and c.checked],
                         baseLayer=next((c.name for c in layers if isinstance(c, dl.BaseLayer) and c.checked), None)),
        dl.ScaleControl(position="bottomleft", imperial=False),
        # full screen: a control added by assets/dashboard_map.js for the whole map panel (legends included)
    ]
    if bounds:  # fitted to the unit; the centre (no zoom) only so that dash-leaflet's viewport tracking, which reads
        # the ``center`` prop on every move, has one (without it the first move threw "reading 'equals'")
        (s, w), (n, e) = bounds
        view = {"bounds": bounds, "boundsOptions": {"padding": [20, 20]}, "center": [(s + n) / 2, (w + e) / 2]}
    else:
        view = home_view(home, MULTI_MIN_ZOOM if multi else 8)
    return dl.Map(children, id=map_id, minZoom=MULTI_MIN_ZOOM if multi else 8, maxZoom=19, zoomSnap=0.25, style={"height": "100%", "width": "100%"},
                  **view)
