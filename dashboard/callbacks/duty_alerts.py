"""Alert callbacks (sound, announce, acknowledge) — for every page that shows ``ui.alerts.alert_banner``.
Registered once for the app by :func:`register` (idempotent). New and acknowledged alerts reach the banner, the
alert list and the pulsing markers through the live stream (``callbacks.pushed``, part ``alerts``; the markers by
the stream's own ``alerts``): no request per page when an alert changes.

A page without a part (the wall has no feed, a page without the map has no ``geo-incidents``) simply does not
run the callbacks that write to it.
"""
from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update

from ..services import alerts as alert_service
from ..ui.alerts import banner_body, feed_items

def _lang(conf) -> str:
    return (conf or {}).get("lang", "zh")


def _can_ack(conf) -> bool:
    from ..auth import current_user

    user = current_user()
    return bool((conf or {}).get("ack") and user is not None and user.can_act)


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
        Output("alert-store", "data", allow_duplicate=True),
        Output("alert-banner-body", "children", allow_duplicate=True),
        Output("alert-banner", "hidden", allow_duplicate=True),
        Output("alert-feed", "children", allow_duplicate=True),
        Output("alert-feed-count", "children", allow_duplicate=True),
        Output("alert-feed-msg", "children"),
        Input({"type": "alert-ack", "id": ALL, "where": ALL}, "n_clicks"),
        State("alert-conf", "data"),
        prevent_initial_call=True,
    )
    def ack(clicks, conf):
        """Acknowledge; the officer's own page shows it at once (other pages hear of it through the stream:
        ``callbacks.pushed``, part ``alerts``)."""
        nothing = (no_update,) * 6
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not any(c for c in (clicks or []) if c):
            return nothing
        value = next((t["value"] for t in ctx.triggered if t.get("value")), None)
        if not value:
            return nothing
        ok, message = acknowledge(trig["id"])
        if not ok:
            return (no_update,) * 5 + (message,)
        snap = alert_service.snapshot()
        lang, can = _lang(conf), _can_ack(conf)
        count = snap.get("count") or 0
        return (snap, banner_body(snap, lang, ack=can), not count, feed_items(snap, lang, can_ack=can),
                str(count) if count else "", "")

    app.clientside_callback(ClientsideFunction("wx_duty", "announce"), Output("alert-seen", "data"),
                            Input("alert-store", "data"), State("alert-seen", "data"),
                            State("alert-sound-on", "data"))
    app.clientside_callback(ClientsideFunction("wx_duty", "pulseMarkers"), Output("alert-pulse", "data"),
                            Input("alert-tick", "n_intervals"), Input("alert-store", "data"))
    app.clientside_callback(ClientsideFunction("wx_duty", "toggleSound"), Output("alert-sound-on", "data"),
                            Output("alert-sound-toggle", "children"),
                            Input("alert-sound-toggle", "n_clicks"), State("alert-sound-on", "data"),
                            State("alert-conf", "data"), prevent_initial_call=True)
