"""Wall (大屏) callbacks — thin: read the tick and what the page already shows, ask :mod:`dashboard.services.wall`,
return props.

Server side, run when the live stream (``assets/live.js``) moves ``live-tick``: the live part
(ticker, alerts, zone colours; answered from the shared cache per change sequence) and the KPI part (header,
ranking, zone cards; also each minute, as cases age). Both return ``no_update`` when nothing changed and when
anything fails (the wall keeps its last content). The incident markers themselves are applied in the browser.
Client side (``assets/wall.js``): the clock, the zone tour and the connection sign (the stream's state).
"""
from __future__ import annotations

import logging

from dash import Input, Output, Patch, State, no_update
from dash.exceptions import PreventUpdate

from ..ui import wall as ui
from ..ui.map_controls import legend
from ..services import wall as wall_data

log = logging.getLogger("dashboard.wall")


def live_update(state: dict | None, lang: str):
    """Everything live on the wall but the markers (pushed to the browser), only for what changed since ``state``:
    the ticker (new reports), the alerts (alert feed), the zones' colours (open incidents) and the pulsing
    markers. Raises PreventUpdate when nothing changed."""
    state = state or {}
    seq, aseq = wall_data.change_seq(), wall_data.alert_seq()
    if state.get("seq") == seq and state.get("aseq") == aseq:
        raise PreventUpdate
    out = dict.fromkeys(LIVE_OUTPUTS, no_update)
    new_state = {**state, "seq": seq, "aseq": aseq}
    if state.get("seq") != seq:
        items = wall_data.ticker_items(lang, seq)
        out["ticker"] = ui.ticker(items, lang, state.get("ticker_ids") or [])
        new_state["ticker_ids"] = [it["id"] for it in items]
        payload = wall_data.zone_choropleth(lang, seq)
        zones = Patch()
        for key, value in (("values", payload["values"]), ("breaks", payload["breaks"]),
                           ("colors", payload["colors"]), ("measureLabel", payload["label"]),
                           ("format", payload["format"])):
            zones[key] = value
        out["zones"] = zones
        out["legend"] = legend(payload, lang)
    if state.get("aseq") != aseq:
        alerts = wall_data.active_alerts(lang, aseq)
        out["alerts"] = alerts["items"]
        out["count"] = ui.alert_count(alerts["count"], lang)
        ids = sorted({a["incident_id"] for a in alerts["items"]})
        if ids != state.get("pulse"):
            pulse = Patch()
            pulse["alerts"] = ids
            out["pulse"] = pulse
            new_state["pulse"] = ids
    out["state"] = new_state
    return tuple(out[k] for k in LIVE_OUTPUTS)


LIVE_OUTPUTS = ("ticker", "alerts", "count", "state", "pulse", "zones", "legend")


def kpi_update(state: dict | None, cfg: dict):
    version = wall_data.kpi_version()
    if state and state.get("v") == version:
        raise PreventUpdate
    lang = cfg.get("lang", "zh")
    payload = wall_data.kpi_payload(lang, cfg.get("rank"), cfg.get("rank_period"))
    return (ui.kpi_header(payload["header"], lang), ui.ranking(payload["ranking"], lang, cfg.get("rank_n", 5)),
            {k: payload[k] for k in ("zones", "district", "order", "ranked")}, payload["as_of"], {"v": version})


def register_callbacks(app) -> None:
    @app.callback(
        Output("wall-ticker", "children"),
        Output("wall-alerts", "data"),
        Output("wall-alert-count", "children"),
        Output("wall-live-state", "data"),
        Output("geo-incidents", "hideout", allow_duplicate=True),
        Output("geo-zones", "hideout", allow_duplicate=True),
        Output("map-legend", "children", allow_duplicate=True),
        Input("live-tick", "data"),
        State("wall-live-state", "data"),
        State("wall-config", "data"),
        prevent_initial_call=True,
    )
    def wall_live(_tick, state, cfg):
        try:
            return live_update(state, (cfg or {}).get("lang", "zh"))
        except PreventUpdate:
            raise
        except Exception:  # noqa: BLE001 - keep the last content on screen, never an error
            log.exception("wall live update failed")
            raise PreventUpdate from None

    @app.callback(
        Output("wall-kpis", "children"),
        Output("wall-ranking", "children"),
        Output("wall-zones", "data"),
        Output("wall-updated", "children"),
        Output("wall-kpi-state", "data"),
        Input("wall-kpi-tick", "n_intervals"),
        Input("live-tick", "data"),
        State("wall-kpi-state", "data"),
        State("wall-config", "data"),
        prevent_initial_call=True,
    )
    def wall_kpis(_n, _seq, state, cfg):
        try:
            return kpi_update(state, cfg or {})
        except PreventUpdate:
            raise
        except Exception:  # noqa: BLE001
            log.exception("wall KPI update failed")
            raise PreventUpdate from None

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
        Output("geo-zones", "hideout", allow_duplicate=True),
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
