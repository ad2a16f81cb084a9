"""总览 Overview: the district map with towns, zones, grids, hazard sites, incidents and hotspots."""
from __future__ import annotations

from dash import dcc, html

from ..callbacks import map as map_callbacks
from ..context import services
from ..i18n import t
from ..metrics.periods import resolve
from ..ui.map import district_map
from ..ui.map_controls import DEFAULT_LAYER, DEFAULT_MEASURE, legend, map_controls
from ..ui.shell import header


def layout(settings, lang: str, params: dict):
    gd = services().geodata()
    counts = {"towns": len(gd.towns), "zones": len(gd.zones), "grids": len(gd.grids)}
    seeds, payload = map_callbacks.initial_hideouts(DEFAULT_MEASURE, DEFAULT_LAYER, resolve(None), lang)
    return html.Div([
        header(lang, "/", params, t("counts_line", lang, **counts)),
        dcc.Store(id="view-state", data={"level": "district", "code": None, "period": "30d"}),
        html.Main(className="wx-main", children=[
            html.Div(className="wx-map", id="map-panel", children=[
                district_map(settings, lang, hideouts=seeds),
                html.Div(map_controls(lang), id="map-controls"),
                html.Div(className="wx-legends", children=[
                    html.Div(legend(payload, lang), id="map-legend"),
                    html.Div(id="hotspot-legend-slot"),
                ]),
            ]),
        ]),
    ])


def register_callbacks(app) -> None:
    map_callbacks.register_callbacks(app)
