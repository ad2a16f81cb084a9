"""告警 Alert components: the banner (any page: duty desk, wall) and the alert feed (duty desk).

Put ``alert_banner(lang)`` on a page and the callbacks in ``dashboard.callbacks.duty_alerts`` (registered once for
the whole app) keep it current: a shared, cached snapshot of the active alerts is polled every ``interval_ms``
into ``dcc.Store(id="alert-store")`` (``{"seq", "count", "items": [alert JSON as in GET /api/v1/alerts]}`` — other
page code may read it, e.g. the wall's tour pauses on a new alert); markers of alerted incidents pulse when the
page has the ``geo-incidents`` layer; a short sound plays for a new alert when ``sound`` is on.

``ack=True`` (duty desk) shows acknowledge buttons to duty officers and admins (``can_act``: the signed-in user
is one, for the first paint); the server checks the role again on every acknowledgement. The wall uses the defaults: read-only, no sound.
"""
from __future__ import annotations

from dash import dcc, html

from ..domain import timefmt
from ..domain.vocab import ALERT_KINDS, name_of
from ..i18n import t

def alert_banner(lang: str, *, ack: bool = False, sound: bool = False, interval_ms: int = 1000,
                 initial: dict | None = None, can_act: bool = False) -> html.Div:
    """The banner and its plumbing (interval, stores). ``initial`` (a snapshot) paints it without a round trip."""
    conf = {"lang": lang, "ack": bool(ack), "txt": {"sound_on": sound_label(lang, True),
                                                    "sound_off": sound_label(lang, False)}}
    return html.Div(className="wx-alerts", children=[
        dcc.Interval(id="alert-tick", interval=interval_ms),
        dcc.Store(id="alert-store", data=initial),
        dcc.Store(id="alert-conf", data=conf),
        dcc.Store(id="alert-seen"),
        dcc.Store(id="alert-pulse"),
        dcc.Store(id="alert-sound-on", data=bool(sound)),
        html.Div(banner_children(initial, lang, ack=ack and can_act, sound_on=sound), id="alert-banner",
                 className="wx-alert-banner", hidden=not (initial and initial.get("count"))),
    ])


def kind_name(kind: str, lang: str) -> str:
    return name_of(ALERT_KINDS, kind, lang)


def _cat(item: dict, lang: str) -> str:
    inc = item["incident"]
    return inc["category_name_en"] if lang == "en" else inc["category_name"]


def banner_children(snapshot: dict | None, lang: str, *, ack: bool, sound_on: bool | None = None) -> list:
    """The banner: what the alerts say (``alert-banner-body``, replaced as alerts change — pushed by the live
    stream) and, for those who may act, the sound switch (kept: it holds the officer's choice)."""
    parts = [html.Span(banner_body(snapshot, lang, ack=ack), id="alert-banner-body", className="wx-alert-body")]
    if ack:
        parts.append(html.Button(sound_label(lang, bool(sound_on)), id="alert-sound-toggle",
                                 className="wx-btn wx-btn-light", n_clicks=0, **{"aria-pressed": str(bool(sound_on)).lower()}))
    return parts


def banner_body(snapshot: dict | None, lang: str, *, ack: bool) -> list:
    if not snapshot or not snapshot.get("count"):
        return []
    newest = snapshot["items"][0] if snapshot.get("items") else None
    parts = [html.Span("⚠", className="wx-alert-icon", **{"aria-hidden": "true"}),
             html.B(t("alert_banner", lang, n=snapshot["count"]), className="wx-alert-count")]
    if newest:
        inc = newest["incident"]
        parts.append(html.Span(className="wx-alert-newest", children=[
            html.Span(kind_name(newest["kind"], lang), className=f"wx-alert-kind wx-alert-{newest['kind']}"),
            html.Span(inc["code"], className="wx-alert-code"),
            html.Span(f"{_cat(newest, lang)} · {t('duty_col_severity', lang)} {inc['severity']}"),
            html.Span(newest.get("hazard_name") or inc.get("address") or "", className="wx-alert-place"),
        ]))
        if ack:
            parts.append(html.Button(t("alert_show", lang), id={"type": "alert-locate", "id": inc["id"], "where": "banner"},
                                     className="wx-btn wx-btn-light", n_clicks=0))
    return parts


def sound_label(lang: str, on: bool) -> str:
    return f"{t('alert_sound', lang)}：{'开' if on else '关'}" if lang != "en" else f"Sound: {'on' if on else 'off'}"


def alert_feed(lang: str, snapshot: dict | None = None, *, can_ack: bool = False) -> html.Section:
    """The duty desk's alert list (kept current by ``callbacks.duty_alerts``; ``snapshot`` paints it first)."""
    count = (snapshot or {}).get("count") or 0
    return html.Section(className="wx-alert-feed", children=[
        html.H3([t("alert_title", lang), html.Span(str(count) if count else "", id="alert-feed-count",
                                                   className="wx-badge")]),
        html.Div(feed_items(snapshot, lang, can_ack=can_ack), id="alert-feed", className="wx-alert-list"),
        html.Div(id="alert-feed-msg", className="wx-msg", role="status"),
    ])


def feed_items(snapshot: dict | None, lang: str, *, can_ack: bool) -> list:
    if not snapshot or not snapshot.get("items"):
        return [html.Div(t("alert_none", lang), className="wx-empty")]
    items = []
    for a in snapshot["items"]:
        inc = a["incident"]
        when = timefmt.beijing(a.get("created_at"), timefmt.SHORT)
        items.append(html.Div(className=f"wx-alert-item wx-alert-{a['kind']}", id=f"alert-item-{a['id']}",
                              **{"data-incident": str(inc["id"])}, children=[
            html.Div(className="wx-alert-line", children=[
                html.Span(kind_name(a["kind"], lang), className=f"wx-alert-kind wx-alert-{a['kind']}"),
                html.Span(f"{t('duty_col_severity', lang)} {inc['severity']}", className=f"wx-sev-tag wx-sev-{inc['severity']}"),
                html.Span(when, className="wx-when", title=a.get("created_at") or ""),
            ]),
            html.Div([html.B(inc["code"]), " · ", _cat(a, lang)]),
            html.Div(a.get("hazard_name") or inc.get("address") or "", className="wx-alert-place"),
            html.Div(className="wx-alert-buttons", children=[
                html.Button(t("duty_locate", lang), id={"type": "alert-locate", "id": inc["id"], "where": "feed"},
                            className="wx-btn wx-btn-light", n_clicks=0),
                html.Button(t("alert_ack", lang), id={"type": "alert-ack", "id": a["id"], "where": "feed"},
                            className="wx-btn wx-btn-primary", n_clicks=0) if can_ack else None,
            ]),
        ]))
    return items
