"""Wall (大屏) callbacks — thin: read the tick and what the page already shows, ask :mod:`dashboard.services.wall`,
return props.

What changes with the store (ticker, alerts, the toured units' colours, KPI header, ranking, tour cards) arrives in the live
stream's events as values (the stores ``wall-ticks``, ``wall-header``, ``wall-rank``, ``wall-zones``), rendered
once per change for every wall (``callbacks.pushed``, parts ``wall`` and ``wallfigures``); the server side here
only refreshes the KPIs each minute, as cases age with no write (``no_update`` when nothing changed or anything
failed: the wall keeps its last content). The incident markers are applied in the browser.
Client side (``assets/wall.js``): the header, ranking and ticker built from their values, the clock, the tour (of
a county's zones, a city's counties or a province's cities: the toured one outlined on its layer, an alert's zone on
the zones') and the connection sign (the stream's state).
"""
from __future__ import annotations

import logging

from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from ..ui import wall as ui
from ..services import wall as wall_data

log = logging.getLogger("dashboard.wall")
TOUR_LAYERS = ("zones", "counties", "cities")  # in the order wx.wall.tour returns their hideout patches


def kpi_update(state: dict | None, cfg: dict):
    version = wall_data.kpi_version()
    if state and state.get("v") == version:
        raise PreventUpdate
    lang = cfg.get("lang", "zh")
    payload = wall_data.kpi_payload(lang, cfg.get("rank"), cfg.get("rank_period"))
    return (ui.header_data(payload["header"], lang), ui.ranking_data(payload["ranking"], lang, cfg.get("rank_n", 5)),
            ui.tour_data(payload), payload["as_of"], {"v": version})


def register_callbacks(app) -> None:
    @app.callback(
        Output("wall-header", "data"),
        Output("wall-rank", "data"),
        Output("wall-zones", "data"),
        Output("wall-updated", "children"),
        Output("wall-kpi-state", "data"),
        Input("wall-kpi-tick", "n_intervals"),
        State("wall-kpi-state", "data"),
        State("wall-config", "data"),
        prevent_initial_call=True,
    )
    def wall_kpis(_n, state, cfg):
        try:
            return kpi_update(state, cfg or {})
        except PreventUpdate:
            raise
        except Exception:  # noqa: BLE001
            log.exception("wall KPI update failed")
            raise PreventUpdate from None

    # the header, the ranking and the ticker are built in the browser from their values (pushed as patches)
    app.clientside_callback("function (h) { return window.wx.wall.header(h); }",
                            Output("wall-kpis", "children"), Input("wall-header", "data"))
    app.clientside_callback("function (r) { return window.wx.wall.ranking(r); }",
                            Output("wall-ranking", "children"), Input("wall-rank", "data"))
    app.clientside_callback("function (t) { return window.wx.wall.ticker(t); }",
                            Output("wall-ticker", "children"), Input("wall-ticks", "data"))
    app.clientside_callback(
        "function (n, cfg) { return window.wx.wall.clock(n, cfg); }",
        Output("wall-clock", "children"),
        Output("wall-date", "children"),
        Input("wall-clock-tick", "n_intervals"),
        State("wall-config", "data"),
    )
    app.clientside_callback(
        "function (n, alerts, zones, st, cfg) { return window.wx.wall.tour(n, alerts, zones, st, cfg); }",
        Output("wall-tour", "data"),
        Output("wall-zone-card", "children"),
        Output("wall-alert", "children"),
        Output("wall-alert", "className"),
        # the toured unit outlined: a zone, county or city (every map page holds the three layers: ui.layers)
        *[Output(f"geo-{layer}", "hideout", allow_duplicate=True) for layer in TOUR_LAYERS],
        Input("wall-tour-tick", "n_intervals"),
        Input("wall-alerts", "data"),
        State("wall-zones", "data"),
        State("wall-tour", "data"),
        State("wall-config", "data"),
        prevent_initial_call="initial_duplicate",
    )
    app.clientside_callback(
        "function (n, st) { return window.wx.wall.heartbeat(n, st); }",
        Output("wall-conn", "data"),
        Output("wall-conn-sign", "className"),
        Output("wall-kpi-state", "data", allow_duplicate=True),
        Input("wall-heartbeat-tick", "n_intervals"),
        State("wall-conn", "data"),
        prevent_initial_call=True,
    )
