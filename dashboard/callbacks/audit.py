"""The audit page's one callback: the filter -> the table, the count and the export link (admins only: the
callback guard refuses everyone else before this runs, and :func:`render` checks again)."""
from __future__ import annotations

from urllib.parse import urlencode

from dash import Input, Output, State

from ..domain import timefmt
from ..i18n import t
from ..services import audit as audit_service
from ..services.filters import FilterError
from ..ui import audit as ui

SHOWN = 200


def query_of(actions, actor, target, start, end) -> dict:
    q = {}
    if actions:
        q["action"] = ",".join(str(a) for a in actions if isinstance(a, str))
    for key, value in (("actor", actor), ("target", target), ("from", start), ("to", end)):
        if isinstance(value, str) and value.strip():
            q[key] = value.strip()[:64]
    return q


def render(actions, actor, target, start, end, lang: str):
    """(table children, message, export href)."""
    from ..auth import current_principal

    who = current_principal()
    if who is None or who.role != "admin":
        return [], t("page_refused", lang), "/api/v1/audit.csv"
    if actions is not None and not isinstance(actions, list):
        return [], t("audit_bad_filter", lang, msg="action"), "/api/v1/audit.csv"
    query = query_of(actions, actor, target, start, end)
    try:
        flt = audit_service.parse_filter(query)
    except FilterError as e:
        return [], t("audit_bad_filter", lang, msg=e.message), "/api/v1/audit.csv"
    found, total = audit_service.page(flt, limit=SHOWN)
    rows = [{**audit_service.as_dict(e), "when": timefmt.beijing(e.at, timefmt.SECOND)} for e in found]
    href = "/api/v1/audit.csv" + ("?" + urlencode({**query, **({"lang": "en"} if lang == "en" else {})})
                                  if query or lang == "en" else "")
    return ui.table(rows, lang, audit_service.ACTIONS, total, len(rows)), "", href


def register(app) -> None:
    @app.callback(Output("audit-table", "children"), Output("audit-msg", "children"),
                  Output("audit-export", "href"),
                  Input("audit-action", "value"), Input("audit-actor", "value"), Input("audit-target", "value"),
                  Input("audit-range", "start_date"), Input("audit-range", "end_date"), State("url", "search"))
    def audit_table(actions, actor, target, start, end, search):
        lang = "en" if "lang=en" in str(search or "") else "zh"
        return render(actions, actor, target, start, end, lang)
