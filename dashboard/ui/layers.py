"""The map's layers, declared in one place (a registry), not a callback per layer.

Each :class:`LayerSpec` says where the geometry comes from (a cached URL), which committed JS functions
style it (``assets/dashboard_map.js`` via ``Namespace("wx", "map")``) and whether it starts visible.
Adding an overlay is one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import dash_leaflet as dl
from dash_extensions.javascript import Namespace

from ..domain import vocab
from ..domain.levels import LAYER_LEVEL, LEVEL_LAYER, UPPER_LAYERS  # noqa: F401 (LEVEL_LAYER: the ui's importers)
from ..domain.vocab import pick
from ..i18n import t

ns = Namespace("wx", "map")


@dataclass(frozen=True)
class LayerSpec:
    key: str  # component id suffix and URL layer name
    label_key: str  # i18n key
    url: str
    style: str | None = None
    on_each_feature: str | None = None
    point_to_layer: str | None = None
    checked: bool = True
    cluster: bool = False
    hideout: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    # pushed: the data comes from the live stream (assets/live.js fetches ``url`` once, then applies each change);
    # the layer starts with an empty ``data`` so dash-leaflet itself never fetches, and ``url`` only describes it
    pushed: bool = False


EMPTY = {"type": "FeatureCollection", "features": []}
SINGLE_LEVELS = ("district", "town", "zone", "grid")  # one county's set (metrics.views.SINGLE_LEVELS)


def _unit_hideout(**style) -> dict:
    return {"values": {}, "breaks": [], "colors": [], "selected": None, **style}


BOUNDARY_LAYERS: tuple[LayerSpec, ...] = (  # bottom to top; grids on top so hovering names a grid
    # cities and counties: only in a multi-county set (a city's or the province's); see :func:`boundary_layers`
    LayerSpec("cities", "layer_cities", "/api/geo/cities.json", "unitStyle", "unitTooltip",
              hideout=_unit_hideout(layer="cities", stroke="#7b241c", weight=3.5, opacity=0.95, emptyFillOpacity=0.0)),
    LayerSpec("counties", "layer_counties", "/api/geo/counties.json", "unitStyle", "unitTooltip",
              hideout=_unit_hideout(layer="counties", stroke="#943126", weight=3, opacity=0.9, emptyFillOpacity=0.0)),
    LayerSpec("towns", "layer_towns", "/api/geo/towns.json", "unitStyle", "unitTooltip", checked=False,
              hideout=_unit_hideout(layer="towns", stroke="#6c3483", weight=3, opacity=0.9, emptyFillOpacity=0.0,
                                    dashArray="6 4")),
    LayerSpec("zones", "layer_zones", "/api/geo/zones.json", "unitStyle", "unitTooltip",
              hideout=_unit_hideout(layer="zones", stroke="#1f618d", weight=2.5, opacity=0.95,
                                    emptyFillOpacity=0.0)),
    LayerSpec("grids", "layer_grids", "/api/geo/grids.json", "unitStyle", "unitTooltip",
              hideout=_unit_hideout(layer="grids", stroke="#5d6d7e", weight=0.6, opacity=0.7)),
    LayerSpec("district", "layer_district", "/api/geo/district.json", "districtStyle",
              hideout={"layer": "district"}, extra={"interactive": False}),
)

# the unit layer of each level (the map's layer keys are plural): dashboard.domain.levels
# Level of detail on a multi-county map (``assets/dashboard_map.js`` wx.map.detail, which fetches each of these layers'
# geometry itself and hands it to the layer as ``data``): below its zoom a layer is empty; at and above it the layers
# marked bbox hold only the units in view (``/api/geo/<layer>.json?bbox=``)
DETAIL = {"towns": {"zoom": 9.5, "bbox": True}, "zones": {"zoom": 10.5, "bbox": True},
          "grids": {"zoom": 12.0, "bbox": True}}
# ... and its outlines (the root, cities, counties) come coarse at low zoom (``/api/geo/<layer>.json?lod=``,
# ``api/geo.LOD_TOLERANCE``): lod 1 below LOD_ZOOMS[0], lod 2 below LOD_ZOOMS[1], the full outlines from there
LOD_LAYERS = ("district", "cities", "counties")
LOD_ZOOMS = (8.5, 10.0)
# ... and from there the outlines of the view only (``?bbox=`` snapped outward to ``step`` degrees, the root's cut to
# the box: ``api/geo.OUTLINE_BBOX_STEP``), unless the view is wider than ``max`` degrees (a wall's 4K screen): then
# the whole layer
OUTLINE_BBOX = {"step": 0.5, "max": 8.0}


def lod_for_zoom(zoom: float) -> int | None:
    """The outlines' level of detail at ``zoom`` (None: the full outlines); as ``wx.map.detail`` chooses it."""
    for i, z in enumerate(LOD_ZOOMS):
        if zoom < z:
            return i + 1
    return None


def lod_url(url: str, lod: int | None) -> str:
    return url if lod is None else f"{url}?lod={lod}"


def managed(key: str) -> bool:
    """Whether a multi-county map's layer ``key`` gets its geometry from ``wx.map.detail`` (never by its url)."""
    return key in DETAIL or key in LOD_LAYERS


def boundary_layers(levels) -> tuple[LayerSpec, ...]:
    """The boundary layers of a set with ``levels`` (``Hierarchy.levels``): a city's or province's set also has its
    counties and (the province) cities."""
    return tuple(s for s in BOUNDARY_LAYERS if s.key not in UPPER_LAYERS or LAYER_LEVEL[s.key] in levels)


def absent_layers(levels) -> list:
    """Empty, unlisted stand-ins for the unit layers the set has not (the shared callbacks address every unit
    layer's ``hideout`` and clicks on every page, whatever the set)."""
    return [dl.GeoJSON(id=f"geo-{s.key}", data=EMPTY, hideout={**s.hideout, "absent": True}) for s in BOUNDARY_LAYERS
            if s.key in UPPER_LAYERS and LAYER_LEVEL[s.key] not in levels]


POINT_LAYERS: tuple[LayerSpec, ...] = (  # drawn above the boundaries, in this order
    LayerSpec("hotspots", "layer_hotspots", "/api/map/hotspots.json?period=30d", "hotspotStyle", "hotspotTooltip",
              checked=False, hideout={"layer": "hotspots"}),
    LayerSpec("rings", "layer_rings", "/api/map/rings.json", "ringStyle", "ringPopup", checked=False,
              hideout={"layer": "rings"}),
    LayerSpec("hazards", "layer_hazards", "/api/geo/hazards.json", None, "hazardPopup", "hazardPoint",
              checked=False),
    LayerSpec("incidents", "layer_incidents", "/api/map/incidents.json", None, "incidentPopup", "incidentPoint",
              checked=True, cluster=True, pushed=True,
              extra={"superClusterOptions": {"radius": 60, "maxZoom": 17}, "spiderfyOnMaxZoom": True,
                     "zoomToBoundsOnClick": True}),
)

# A multi-county map's incidents: counted per square cell of the view on the server (``/api/map/incident_cells.json``)
# and drawn as labelled bubbles, until the view is zoomed in to VIEW_MARKERS_ZOOM and holds at most
# ``Settings.map_view_markers`` of them: then the markers of the view, which the same answer carries (``points=1``:
# one round trip a move). Both layers sit in the one incident overlay (a layer group); ``assets/live.js`` (view mode)
# fetches what the view needs and again after a pushed change. One county's map keeps its one clustered layer of
# every open incident.
CELLS_LAYER = "incident_cells"
CELLS_URL = "/api/map/incident_cells.json"
VIEW_MARKERS_ZOOM = 12


def incident_view(levels, cell0: float) -> dict | None:
    """What ``assets/live.js`` needs to show a multi-county map's incidents by view (in ``live-conf``), or None for
    one county's map (every open incident, clustered in the browser). ``cell0``: the cells' side in degrees at zoom
    0 (halved at each zoom: ``services.maps.cell_size``), so that the browser asks for the box the server counts."""
    if "county" not in levels:
        return None
    return {"cells": CELLS_URL, "markersZoom": VIEW_MARKERS_ZOOM, "cell0": cell0}


def cells_layer(lang: str, dark: bool = False) -> dl.GeoJSON:
    """The cells' layer (its ``data`` set by ``assets/live.js``: never a url, the view decides what it holds)."""
    return dl.GeoJSON(id=f"geo-{CELLS_LAYER}", data=EMPTY, pointToLayer=ns("incidentCell"),
                      onEachFeature=ns("incidentCellTooltip"),
                      hideout={"layer": CELLS_LAYER, "lang": lang, "labels": _labels(lang), "dark": dark})


# hazard kind names per language (the popups' JS gets one language's table)
HAZARD_KINDS = {lang: {k: pick(names, lang) for k, names in vocab.HAZARD_KINDS.items()} for lang in ("zh", "en")}


POPUP_LABELS = {
    "risk": ("风险等级", "Risk level"), "severity": ("等级", "Severity"), "category": ("类别", "Category"),
    "state": ("状态", "State"), "place": ("位置", "Place"), "reported": ("上报", "Reported"), "due": ("时限", "Due"),
    "detail": ("详情", "Details"), "ring": ("安全半径", "Safety ring"), "open_in_ring": ("半径内未结案事件", "Open incidents inside"),
    "count": ("案事件数", "Incidents"), "hot": ("显著热点", "Significant hot spot"),
    "zoom_in": ("点击放大查看", "Click to zoom in"),
}


def _labels(lang: str) -> dict:
    labels = {k: (zh if lang == "zh" else en) for k, (zh, en) in POPUP_LABELS.items()}
    return {**labels, "zone": t("zone", lang), "town": t("town", lang), "grid": t("grid", lang)}


# Every polygon layer draws in a pane of its own, stacked in registry order above Leaflet's overlay pane (400)
# and below the markers (600). dash-leaflet re-adds a GeoJSON layer when its hideout changes (a drill-down
# highlight, a recolour); in one shared pane that re-add moved the layer to the top, so after the first drill
# the zones covered the grids and grid clicks and tooltips stopped working.
PANES = {spec.key: (f"wx-{spec.key}", 401 + i)
         for i, spec in enumerate([s for s in BOUNDARY_LAYERS + POINT_LAYERS if not s.point_to_layer])}


def panes() -> list:
    """The map's panes for :data:`PANES` (children of the map, before the layers that use them)."""
    return [dl.Pane(name=name, style={"zIndex": z}, id=f"pane-{key}") for key, (name, z) in PANES.items()]


def geojson_for(spec: LayerSpec, lang: str, dark: bool = False, hideout_extra: dict | None = None,
                visible: bool | None = None, by_view: bool = False) -> dl.GeoJSON:
    """The GeoJSON component of a layer. A layer that starts hidden gets no ``url`` yet: its data is fetched
    when the user switches it on (callbacks.map.load_overlays), so the first paint downloads only what shows.
    ``by_view``: a multi-county map's layer whose geometry follows the view (:func:`managed`): no url, an empty
    ``data`` that ``wx.map.detail`` replaces."""
    hideout = {**spec.hideout, "lang": lang, "labels": _labels(lang), "dark": dark, **(hideout_extra or {})}
    if spec.key in ("hazards", "rings"):
        hideout["kinds"] = HAZARD_KINDS.get(lang, HAZARD_KINDS["zh"])
    if spec.key == "incidents":
        from .palette import category_table, state_table

        hideout.update(categories=category_table(lang), statuses=state_table(lang))
    kwargs = {}
    if spec.style:
        kwargs["style"] = ns(spec.style)
    if spec.on_each_feature:
        kwargs["onEachFeature"] = ns(spec.on_each_feature)
    if spec.point_to_layer:
        kwargs["pointToLayer"] = ns(spec.point_to_layer)
    if spec.key in PANES:
        kwargs["pane"] = PANES[spec.key][0]
    if spec.pushed or by_view:
        kwargs["data"] = EMPTY
    shown = (spec.checked if visible is None else visible) and not by_view
    return dl.GeoJSON(id=f"geo-{spec.key}", url=spec.url if shown else None, hideout=hideout,
                      cluster=spec.cluster, **kwargs, **spec.extra)


def overlays(specs, lang: str, dark: bool = False, hideouts: dict | None = None, checked: dict | None = None,
             detail: bool = False) -> list:
    """The overlays of ``specs``; ``detail`` (a multi-county map): the layers of :data:`DETAIL` and
    :data:`LOD_LAYERS` start without a url and with empty data (``wx.map.detail`` fetches what the view needs), their
    hideout saying how (``detail``: their zoom; ``lod``: the zooms of :data:`LOD_ZOOMS`; both with the layer's url and
    its name in the layer control, whose unchecked layers are never fetched; a unit layer drawn whole has ``whole``,
    its url and name: switched off, its selected unit is outlined from there), and the incident overlay holds the
    cells' layer beside the markers' (:data:`CELLS_LAYER`)."""
    hideouts, checked = hideouts or {}, checked or {}
    out = []
    for s in specs:
        h = dict(hideouts.get(s.key) or {})
        by_view = detail and managed(s.key)
        if by_view and s.key in DETAIL:
            h["detail"] = {**DETAIL[s.key], "url": s.url, "name": t(s.label_key, lang)}
        elif by_view:
            h["lod"] = {"zooms": list(LOD_ZOOMS), "url": s.url, "name": t(s.label_key, lang), "bbox": OUTLINE_BBOX}
        elif s.key in LAYER_LEVEL:  # a unit layer drawn whole: where its selected unit is outlined from when it is off
            h["whole"] = {"url": s.url, "name": t(s.label_key, lang)}
        layer = geojson_for(s, lang, dark, h, checked.get(s.key, s.checked), by_view=by_view)
        if detail and s.key == "incidents":
            layer = dl.LayerGroup([layer, cells_layer(lang, dark)], id="group-incidents")
        out.append(dl.Overlay(layer, name=t(s.label_key, lang), checked=checked.get(s.key, s.checked),
                              id=f"overlay-{s.key}"))
    return out


def lazy_urls(lang: str, shown_names, current: dict, levels=SINGLE_LEVELS) -> dict:
    """{layer key: url} for hidden-at-start layers that are now shown and have no url yet. On a multi-county map
    (``levels`` with a county) the layers whose geometry follows the view (:func:`managed`) are left out:
    ``wx.map.detail`` gives them theirs, never the whole layer."""
    out = {}
    multi = "county" in levels
    for spec in BOUNDARY_LAYERS + POINT_LAYERS:
        if multi and managed(spec.key):
            continue
        if t(spec.label_key, lang) in (shown_names or []) and not current.get(spec.key):
            out[spec.key] = spec.url
    return out


def start_urls(checked: dict | None = None, skip=()) -> tuple[str, ...]:
    """The data URLs a map fetches for its first paint: the layers shown at start (``checked`` overrides, as in
    :func:`overlays`), bottom to top, without the keys in ``skip`` (e.g. a layer whose url the page filters)."""
    checked = checked or {}
    return tuple(s.url for s in BOUNDARY_LAYERS + POINT_LAYERS
                 if checked.get(s.key, s.checked) and s.key not in skip and s.key not in UPPER_LAYERS)


def start_urls_for(urls, levels, zoom: float | None = None) -> tuple[str, ...]:
    """A page's :func:`start_urls` for a set with ``levels``: a multi-county map fetches at start its cities and
    counties (and the root's outline when shown) at the level of detail of its start ``zoom``
    (:func:`lod_for_zoom`), as ``wx.map.detail`` asks for them, instead of the layers it draws only when zoomed in
    (:data:`DETAIL`); ``zoom`` None (a map the browser fits to a unit: its zoom is the screen's) leaves them out, and
    so does a zoom past the coarse levels (the browser asks for the outlines of its view: :data:`OUTLINE_BBOX`)."""
    if "county" not in levels:
        return tuple(urls)
    urls = request_urls_for(urls, levels)
    lod = None if zoom is None else lod_for_zoom(zoom)
    outlines = tuple(lod_url(s.url, lod) for s in boundary_layers(levels)
                     if lod is not None and (s.key in UPPER_LAYERS or (s.key in LOD_LAYERS and s.url in urls)))
    return outlines + tuple(u for u in urls if not any(u == s.url for s in BOUNDARY_LAYERS if managed(s.key)))


def request_urls_for(urls, levels) -> tuple[str, ...]:
    """Data URLs to preload for a set with ``levels``: a multi-county map never fetches its whole incident layer
    (it asks for the view's cells or markers: :func:`incident_view`)."""
    if "county" not in levels:
        return tuple(urls)
    return tuple(u for u in urls if not u.split("?")[0] == "/api/map/incidents.json")
