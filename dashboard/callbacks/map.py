"""Map callbacks: recolour by measure (hideout only, no geometry), the live stream's hook (``assets/live.js``
follows the incident layer's url: changes arrive by push and are applied in the browser), hotspot period,
legends."""
from __future__ import annotations

import json

from dash import Input, Output, Patch, State, no_update

from ..services import maps, units
from ..metrics.periods import PeriodError, resolve
from ..ui.layers import BOUNDARY_LAYERS, DETAIL, LOD_LAYERS, POINT_LAYERS, lazy_urls
from ..ui.map_controls import hotspot_legend, legend

CHORO_LAYERS = ("zones", "grids", "towns", "counties", "cities")  # every page holds each (ui.layers.absent_layers)
OVERLAY_LAYERS = ("zones", "grids", "towns")  # those whose overlay every map lists (the others: a multi-county set's)
VIEW_LAYERS = (*DETAIL, *LOD_LAYERS)  # a multi-county map's layers whose geometry follows the view (ui.layers.managed)


def _period(view_state):
    vs = view_state or {}
    try:
        return resolve(vs.get("period"), vs.get("from"), vs.get("to"))
    except PeriodError:
        return resolve(None)


def choropleth_hideouts(measure: str, layer: str, per, lang: str, coloured: str | None = None) -> tuple[dict, dict]:
    """(hideout patches per layer, payload) for a measure. Only the layer being coloured and the one coloured
    before (``coloured``, cleared) are touched: restyling a layer costs a pass over all its polygons."""
    payload = None if measure == "none" else maps.measure_payload(layer, measure, per, lang)
    patches = {}
    for name in CHORO_LAYERS:
        if name != layer and name != coloured:
            patches[name] = no_update
            continue
        p = Patch()
        if payload and name == layer:
            p["values"] = payload["values"]
            p["breaks"] = payload["breaks"]
            p["colors"] = payload["colors"]
            p["measureLabel"] = payload["label"]
            p["format"] = payload["format"]
        else:
            p["values"] = {}
            p["breaks"] = []
            p["colors"] = []
        patches[name] = p
    return patches, payload


def initial_hideouts(measure: str, layer: str, per, lang: str) -> tuple[dict, dict | None]:
    """Plain dict hideout seeds for the first paint (no callback while geometry is still downloading)."""
    if measure == "none":
        return {}, None
    payload = maps.measure_payload(layer, measure, per, lang)
    seed = {layer: {"values": payload["values"], "breaks": payload["breaks"], "colors": payload["colors"],
                    "measureLabel": payload["label"], "format": payload["format"]}}
    return seed, payload


def register_callbacks(app) -> None:
    @app.callback(
        *[Output(f"geo-{name}", "hideout", allow_duplicate=True) for name in CHORO_LAYERS],
        Output("map-legend", "children"),
        Output("map-coloured", "data"),
        Input("map-measure", "value"),
        Input("map-measure-layer", "value"),
        Input("map-period", "data"),
        State("url", "search"),
        State("map-coloured", "data"),
        prevent_initial_call=True,
    )
    def recolour(measure, layer, view_state, search, coloured):
        """The viewer chose a measure, layer or period (a measure counted now then follows the store through the
        live stream: ``callbacks.pushed``, part ``colours``)."""
        lang = "en" if "lang=en" in (search or "") else "zh"
        layer = layer or "zones"
        patches, payload = choropleth_hideouts(measure or "none", layer, _period(view_state), lang, coloured)
        return (*[patches[n] for n in CHORO_LAYERS], legend(payload, lang), layer if payload else None)

    @app.callback(*[Output(f"overlay-{name}", "checked") for name in OVERLAY_LAYERS],
                  Input("map-measure-layer", "value"), State("map-measure", "value"), prevent_initial_call=True)
    def show_coloured_layer(layer, measure):
        """Colouring towns (or zones, grids) shows that layer if it was switched off: the towns start hidden."""
        if not layer or measure in (None, "none"):
            return (no_update,) * len(OVERLAY_LAYERS)
        return tuple(True if name == layer else no_update for name in OVERLAY_LAYERS)

    # a hideout that reached a layer while its url was being fetched is given again once the layer is drawn
    for name in CHORO_LAYERS:
        app.clientside_callback(
            f"""function (hideout) {{ return window.wx.map.settleHideout("geo-{name}", "{name}", hideout); }}""",
            Output("live-follow", "data", allow_duplicate=True), Input(f"geo-{name}", "hideout"),
            prevent_initial_call=True,
        )

    # live by push (assets/live.js): the stream follows the incident layer's url (its filter) and the ring layer's;
    # the browser does the rest — no request while nothing changes
    app.clientside_callback(
        """function (incidentsUrl, ringsUrl, conf) {
            return window.wx.live.follow(incidentsUrl, ringsUrl, conf);
        }""",
        Output("live-follow", "data"),
        Input("geo-incidents", "url"), Input("geo-rings", "url"), State("live-conf", "data"),
    )
    # the page's live parts changed with its view (not at start: live-conf carries the first; an Input that other
    # callbacks write would hold the layer's first load until they answered)
    app.clientside_callback(
        """function (push) { return window.wx.live.push(push); }""",
        Output("live-follow", "data", allow_duplicate=True),
        Input("live-push", "data"), prevent_initial_call=True,
    )

    @app.callback(Output("geo-hotspots", "url", allow_duplicate=True), Input("hotspot-period", "value"),
                  State("geo-hotspots", "url"), prevent_initial_call=True)
    def hotspot_period(period, current):
        if not current:  # the layer is off: its url is set when it is switched on
            return no_update
        return f"/api/map/hotspots.json?period={period or '30d'}"

    # a multi-county map's level of detail (assets/dashboard_map.js wx.map.detail): the outlines (root, cities,
    # counties) coarse or full by the zoom, towns, zones and grids by the zoom and for the view only — fetched in the
    # browser and handed to each layer as data; a layer switched off in the layer control is not fetched. It runs at
    # start too: a map opened zoomed in (a unit's link) gets its detail at once, and the outlines come from it.
    app.clientside_callback(
        """function (zoom, bounds, overlays) {
            var hideouts = Array.prototype.slice.call(arguments, 3);
            return window.wx.map.detail(zoom, bounds, overlays, %s, hideouts);
        }""" % json.dumps(list(VIEW_LAYERS)),
        Output("live-follow", "data", allow_duplicate=True),
        Input("map", "zoom"), Input("map", "bounds"), Input("map-layers", "overlays"),
        *[State(f"geo-{k}", "hideout") for k in VIEW_LAYERS],
        prevent_initial_call="initial_duplicate",
    )

    lazy = [spec.key for spec in BOUNDARY_LAYERS + POINT_LAYERS]

    @app.callback(*[Output(f"geo-{k}", "url", allow_duplicate=True) for k in lazy],
                  Input("map-layers", "overlays"), *[State(f"geo-{k}", "url") for k in lazy],
                  State("url", "search"), State("hotspot-period", "value"), prevent_initial_call=True)
    def load_overlays(shown, *rest):
        """Fetch a hidden-at-start layer's data the first time it is switched on."""
        *urls, search, hot_period = rest
        lang = "en" if "lang=en" in (search or "") else "zh"
        todo = lazy_urls(lang, shown, dict(zip(lazy, urls)), units.hierarchy().levels)
        if "hotspots" in todo:
            todo["hotspots"] = f"/api/map/hotspots.json?period={hot_period or '30d'}"
        return tuple(todo.get(k, no_update) for k in lazy)

    # no page starts with the hotspots shown (its slot starts empty); the control's overlays are in the layout
    @app.callback(Output("hotspot-legend-slot", "children"), Input("map-layers", "overlays"), State("url", "search"),
                  prevent_initial_call=True)
    def hotspot_legend_visibility(overlays, search):
        lang = "en" if "lang=en" in (search or "") else "zh"
        from ..i18n import t

        return hotspot_legend(lang) if t("layer_hotspots", lang) in (overlays or []) else []
