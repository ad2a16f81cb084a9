"""Alert callbacks (banner, feed, marker pulse, sound, acknowledge) — for every page that shows
``ui.alerts.alert_banner``. Registered once for the app by :func:`register` (idempotent).

A page without a part (the wall has no feed, a page without the map has no ``geo-incidents``) simply does not
run the callbacks that write to it.
"""
from __future__ import annotations

import logging

from dash import ALL, ClientsideFunction, Input, Output, Patch, State, ctx, no_update

from ..services import alerts as alert_service
from ..ui.alerts import banner_children, feed_items

log = logging.getLogger(__name__)


def _lang(conf) -> str:
    return (conf or {}).get("lang", "zh")


def _can_ack(conf) -> bool:
    from ..auth import current_user

    user = current_user()
    return bool((conf or {}).get("ack") and user is not None and user.can_act)


def poll(known: dict | None) -> dict | None:
    """A new snapshot when the alerts changed since ``known`` (one cheap index lookup otherwise)."""
    seq = alert_service.current_seq()
    if known is not None and known.get("seq") == seq:
        return None
    return alert_service.snapshot(seq)


def acknowledge(alert_id: int) -> tuple[bool, str]:
    """Acknowledge as the signed-in duty officer; ``(ok, message)``. The role is checked here, server-side."""
    from ..auth import ACT_ROLES, AuthError, authorize
    from ..store.alerts import AlertNotFound

    try:
        user = authorize(ACT_ROLES)
    except AuthError as e:
        return False, e.message
    try:
        alert_service.acknowledge(int(alert_id), user.name)
    except AlertNotFound:
        return False, f"no alert {alert_id}"
    return True, ""


def register(app) -> None:
    if getattr(app, "_wx_alert_callbacks", False):
        return
    app._wx_alert_callbacks = True

    @app.callback(
        Output("alert-store", "data"),
        Input("live-aseq", "data"),  # moved by the live stream when an alert is raised or acknowledged
        State("alert-store", "data"),
        prevent_initial_call=True,  # the page carries the snapshot it was built with
    )
    def refresh(_n, known):
        try:
            snap = poll(known)
        except Exception:  # noqa: BLE001 - a wall must ride out a database hiccup; try again next tick
            log.exception("alerts: poll failed")
            return no_update
        return no_update if snap is None else snap

    @app.callback(
        Output("alert-banner", "children"),
        Output("alert-banner", "hidden"),
        Input("alert-store", "data"),
        State("alert-conf", "data"),
        State("alert-sound-on", "data"),
        prevent_initial_call=True,
    )
    def banner(snap, conf, sound_on):
        return banner_children(snap, _lang(conf), ack=_can_ack(conf), sound_on=sound_on), not (snap or {}).get("count")

    @app.callback(
        Output("alert-feed", "children"),
        Output("alert-feed-count", "children"),
        Input("alert-store", "data"),
        State("alert-conf", "data"),
        prevent_initial_call=True,  # the layout paints the feed from the snapshot the store starts with
    )
    def feed(snap, conf):
        count = (snap or {}).get("count") or 0
        return feed_items(snap, _lang(conf), can_ack=_can_ack(conf)), (str(count) if count else "")

    @app.callback(
        Output("geo-incidents", "hideout", allow_duplicate=True),
        Input("alert-store", "data"),
        prevent_initial_call=True,
    )
    def pulse(snap):
        p = Patch()
        p["alerts"] = sorted({a["incident"]["id"] for a in (snap or {}).get("items", [])})
        return p

    @app.callback(
        Output("alert-store", "data", allow_duplicate=True),
        Output("alert-feed-msg", "children"),
        Input({"type": "alert-ack", "id": ALL, "where": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def ack(clicks):
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not any(c for c in (clicks or []) if c):
            return no_update, no_update
        value = next((t["value"] for t in ctx.triggered if t.get("value")), None)
        if not value:
            return no_update, no_update
        ok, message = acknowledge(trig["id"])
        if not ok:
            return no_update, message
        return alert_service.snapshot(), ""

    app.clientside_callback(ClientsideFunction("wx_duty", "announce"), Output("alert-seen", "data"),
                            Input("alert-store", "data"), State("alert-seen", "data"),
                            State("alert-sound-on", "data"))
    app.clientside_callback(ClientsideFunction("wx_duty", "pulseMarkers"), Output("alert-pulse", "data"),
                            Input("alert-tick", "n_intervals"), Input("alert-store", "data"))
    app.clientside_callback(ClientsideFunction("wx_duty", "toggleSound"), Output("alert-sound-on", "data"),
                            Output("alert-sound-toggle", "children"),
                            Input("alert-sound-toggle", "n_clicks"), State("alert-sound-on", "data"),
                            State("alert-conf", "data"), prevent_initial_call=True)
