"""The alert push page's components (告警推送, admins), built from the values they are given."""
from __future__ import annotations

from dash import dcc, html

from ..i18n import t

STATE_FILTER = ("pending", "sent", "dead")


def channels_table(channels: list[dict], lang: str) -> html.Div:
    """The configured channels (``services.notify.channel_rows``: URLs already masked)."""
    if not channels:
        return html.P(t("notify_no_channels", lang), id="notify-no-channels", className="wx-note")
    head = html.Tr([html.Th(t(k, lang)) for k in ("notify_col_kind", "notify_col_key", "notify_col_target",
                                                   "notify_col_signed")])
    body = [html.Tr([html.Td(c["kind_name"]), html.Td(c["key"]), html.Td(c["target"], className="wx-notify-target"),
                     html.Td("✓" if c["signed"] else "—")]) for c in channels]
    return html.Table([html.Thead(head), html.Tbody(body)], className="wx-audit-table", id="notify-channels")


def state_filter(lang: str) -> dcc.Dropdown:
    options = [{"label": t(f"notify_state_{s}", lang), "value": s} for s in STATE_FILTER]
    return dcc.Dropdown(id="notify-state", options=options, placeholder=t("notify_state_all", lang),
                        className="wx-notify-state", clearable=True)


def state_label(item: dict, lang: str) -> tuple[str, str]:
    """(css suffix, text) of a row's state; a pending row under a live lease is being sent."""
    state = "sending" if item.get("sending") else item["state"]
    return state, t(f"notify_state_{state}", lang)


def outbox_table(items: list[dict], lang: str, counts: dict, unconfigured: list[str]) -> list:
    """The outbox rows (``services.notify.view_dict`` with Beijing times in ``next_when`` / ``sent_when``), newest
    first; a requeue button on each dead row."""
    parts = []
    if counts:
        summary = "; ".join(f"{ch}: " + ", ".join(f"{t(f'notify_state_{s}', lang)} {n}" for s, n in c.items())
                            for ch, c in sorted(counts.items()))
        parts.append(html.P(summary, id="notify-counts", className="wx-note"))
    if unconfigured:
        parts.append(html.P(t("notify_unconfigured", lang, keys=", ".join(unconfigured)), className="wx-msg-error",
                            id="notify-unconfigured"))
    if not items:
        return parts + [html.P(t("notify_none", lang), id="notify-none", className="wx-note")]
    head = html.Tr([html.Th(t(k, lang)) for k in ("notify_col_alert", "notify_col_channel", "notify_col_state",
                                                   "notify_col_attempts", "notify_col_next", "notify_col_error",
                                                   "notify_col_sent", "notify_col_action")])
    body = []
    for it in items:
        css, label = state_label(it, lang)
        action = (html.Button(t("notify_requeue", lang), id={"type": "notify-requeue", "index": it["id"]},
                              className="wx-btn wx-btn-light wx-notify-requeue", n_clicks=0)
                  if it["state"] == "dead" else "")
        body.append(html.Tr(className=f"wx-notify-row wx-notify-st-{css}", **{"data-row": str(it["id"])}, children=[
            html.Td([html.Span(it["incident_code"]), html.Br(), html.Small(it["message_id"])]),
            html.Td(it["channel"]), html.Td(label, className="wx-notify-st"), html.Td(str(it["attempts"])),
            html.Td(it.get("next_when") or ""), html.Td(it.get("last_error") or "", className="wx-notify-error"),
            html.Td(it.get("sent_when") or ""), html.Td(action)]))
    parts.append(html.P(t("notify_count", lang, shown=len(items)), className="wx-note"))
    parts.append(html.Table([html.Thead(head), html.Tbody(body)], className="wx-audit-table", id="notify-rows"))
    return parts
