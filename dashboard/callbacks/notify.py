"""The alert push page's callbacks (admins only: the callback guard refuses everyone else before these run, and
each checks again): the outbox table (state filter, refreshed every few seconds and after a requeue) and the
requeue buttons of dead rows (recorded in the audit log with the requeue, one transaction)."""
from __future__ import annotations

import time

from dash import ALL, Input, Output, State, ctx, no_update

from ..domain import timefmt
from ..i18n import t
from ..services import notify as notify_service
from ..ui import notify as ui

SHOWN = 100  # rows on the page (each dead one with a button: well inside the callback guard's 200 inputs)


def _is_admin() -> bool:
    from ..auth import current_principal

    who = current_principal()
    return who is not None and who.role == "admin" and not who.kiosk


def _lang(search) -> str:
    return "en" if "lang=en" in str(search or "") else "zh"


def table(state, lang: str) -> list:
    if not _is_admin():
        return [t("page_refused", lang)]
    state = state if state in notify_service.STATES else None
    body = notify_service.outbox(state=state, limit=SHOWN)
    items = [{**it, "next_when": timefmt.beijing(it["next_attempt_at"], timefmt.SECOND) if it["next_attempt_at"]
              else "", "sent_when": timefmt.beijing(it["sent_at"], timefmt.SECOND) if it["sent_at"] else ""}
             for it in body["items"]]
    return ui.outbox_table(items, lang, body["counts"], body["unconfigured"])


def requeue(row_id, lang: str) -> tuple[str, str, object]:
    """(message, class, store value) for a click on a dead row's button."""
    if not _is_admin():
        return t("page_refused", lang), "wx-msg wx-msg-error", no_update
    if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 < row_id < 2**63:
        return t("notify_not_found", lang), "wx-msg wx-msg-error", no_update
    try:
        row, changed = notify_service.requeue(row_id)
    except notify_service.RowNotFound:
        return t("notify_not_found", lang), "wx-msg wx-msg-error", no_update
    if not changed:
        return t("notify_not_dead", lang), "wx-msg wx-msg-error", time.time()
    return (t("notify_requeued", lang, message=row["message_id"], channel=row["channel"]), "wx-msg wx-msg-ok",
            time.time())


def register(app) -> None:
    @app.callback(Output("notify-table", "children"),
                  Input("notify-state", "value"), Input("notify-tick", "n_intervals"),
                  Input("notify-requeued", "data"), State("url", "search"))
    def notify_table(state, _tick, _requeued, search):
        return table(state, _lang(search))

    @app.callback(Output("notify-msg", "children"), Output("notify-msg", "className"),
                  Output("notify-requeued", "data"),
                  Input({"type": "notify-requeue", "index": ALL}, "n_clicks"), State("url", "search"),
                  prevent_initial_call=True)
    def notify_requeue(_clicks, search):
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not any(tr.get("value") for tr in ctx.triggered):
            return no_update, no_update, no_update
        return requeue(trig.get("index"), _lang(search))
