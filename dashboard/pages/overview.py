"""总览 Overview: the district map (towns, zones, grids, hazard sites, incidents, hotspots) and the drill-down
panel (breadcrumb, period, KPI cards, rankings, charts, profiles). The view lives in the URL query
(``?level=zone&code=…&period=2019``) and in ``dcc.Store(id="view-state")``; see ``dashboard/callbacks/drill.py``."""
from __future__ import annotations

from urllib.parse import urlencode

from dash import dcc, html

from ..callbacks import drill as drill_callbacks
from ..callbacks import map as map_callbacks
from ..i18n import t
from ..services import drill, live, maps, units
from ..services import tiles as basemap_tiles
from ..ui import layers, panel
from ..ui.map import district_map, start_zoom
from ..ui.map_controls import DEFAULT_LAYER, DEFAULT_MEASURE, MULTI_LAYER, legend, live_feed, map_controls
from ..ui.shell import header
from .head import map_preload

PRELOAD = map_preload(layers.start_urls())  # the shown layers' geometry and the incidents


def map_start_zoom(params: dict) -> float | None:
    """The map's start zoom (pages.head: the outlines' preloads): the root's view at its own zoom; a unit's view is
    fitted by the browser (None)."""
    h = units.hierarchy()
    if drill.state_from_params(params, h)["level"] != "district":
        return None
    return start_zoom(units.root_bounds(), h.levels)


def _may_export() -> bool:
    """Whether the viewer may download the exports (the public overview shows no GIS links to the anonymous)."""
    from ..auth import current_principal

    who = current_principal()
    return who is not None and who.can_read


def layout(settings, lang: str, params: dict):
    gd = units.geodata()
    h = units.hierarchy(gd)
    state = drill.state_from_params(params, h)
    counts = {"towns": len(gd.towns), "zones": len(gd.zones), "grids": len(gd.grids)}
    if h.multi:
        counts["counties"] = len(gd.counties)
    unit_layer = MULTI_LAYER if h.multi else DEFAULT_LAYER  # a multi-county map colours its counties at start
    seeds, payload = map_callbacks.initial_hideouts(DEFAULT_MEASURE, unit_layer, drill.period_of(state), lang)
    if state["level"] != "district":  # first paint already highlights the unit of a shared link
        layer = layers.LEVEL_LAYER[state["level"]]
        seeds = {**seeds, layer: {**seeds.get(layer, {}), "selected": state["code"]}}
    bounds = h.bounds[(state["level"], state["code"])] if state["level"] != "district" else None
    the_map = district_map(settings, lang, hideouts=seeds, bounds=bounds, home=units.root_bounds(gd),
                           tiles=basemap_tiles.basemaps(settings), levels=h.levels)
    head = live.read_head()  # the live stream starts here: nothing committed after the render is missed
    return html.Div([
        header(lang, "/", params, t("counts_line_multi" if h.multi else "counts_line", lang, **counts),
               place=units.title(lang, gd)),
        # the overview's own view of the URL (drill callbacks), starting where the page is: its report on mounting
        # changes nothing, so the view is not asked for again
        dcc.Location(id="ov-url", refresh=False, pathname="/", search=("?" + urlencode(params)) if params else ""),
        dcc.Store(id="view-state", data=state),
        dcc.Store(id="map-selected"),  # the unit selected in each map layer (callbacks.drill: wx.map.select)
        dcc.Store(id="map-selected-drawn"),
        dcc.Store(id="ov-lang", data=lang),
        dcc.Store(id="map-ready"),  # set once the map has drawn (callbacks.drill): the panel's charts mount then
        html.Main(className="wx-main wx-overview", children=[
            html.Div(className="wx-map", id="map-panel", children=[
                the_map,
                html.Div(map_controls(lang, layer=unit_layer, period={k: state.get(k) for k in ("period", "from", "to")},
                                      unit_layers=maps.map_layers()), id="map-controls"),
                live_feed(head.seq, head.aseq, {
                    "colours": {"measure": DEFAULT_MEASURE, "layer": unit_layer, "lang": lang},
                    "cards": {"state": {k: state.get(k) for k in ("level", "code", "period", "from", "to")},
                              "lang": lang}, "rings": {}}, charts=True,
                          view=maps.view_config()),
                html.Div(className="wx-legends", children=[
                    html.Div(legend(payload, lang), id="map-legend"),
                    html.Div(id="hotspot-legend-slot"),
                ]),
            ]),
            panel.panel_layout(state, lang, drill.DEFAULT_KPI, drill.gis_query(state) if _may_export() else None),
        ]),
    ])


def register_callbacks(app) -> None:
    from dash import Input, Output, State

    map_callbacks.register_callbacks(app)
    drill_callbacks.register_callbacks(app)

    # what the overview shows live follows its view: the cards of the unit and period, the colours of the measure
    app.clientside_callback(
        """function (state, measure, layer, push) {
            var s = state || {};
            return window.wx.live.pushWith(push, {
                colours: {measure: measure || "none", layer: layer || "zones"},
                cards: {state: {level: s.level || null, code: s.code || null, period: s.period || null,
                                from: s.from || null, to: s.to || null}}});
        }""",
        Output("live-push", "data"),
        Input("view-state", "data"), Input("map-measure", "value"), Input("map-measure-layer", "value"),
        State("live-push", "data"), prevent_initial_call=True,
    )

    # The choropleth's period follows the panel's (the map callbacks read only map-period), in the browser: a drill
    # that keeps the period changes nothing here (the map is not recoloured for it).
    app.clientside_callback(
        """function (state, current) {
            var s = state || {}, c = current || {};
            var next = {period: s.period || null, from: s.from || null, to: s.to || null};
            if (["period", "from", "to"].every(function (k) { return next[k] === (c[k] || null); })) {
                return window.dash_clientside.no_update;
            }
            return next;
        }""",
        Output("map-period", "data"), Input("view-state", "data"), State("map-period", "data"),
        prevent_initial_call=True,
    )
