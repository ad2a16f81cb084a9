"""The audit log page's components (审计日志), built from the values they are given."""
from __future__ import annotations

from dash import dcc, html

from ..domain.vocab import USER_ROLES
from ..i18n import t

ACTIONS_ORDER = ("sign_in", "sign_in_failed", "locked", "sign_out", "kiosk_session", "transition", "alert_ack",
                 "export", "audit_export", "user_add", "user_change", "user_logout", "tokens_changed",
                 "notify_requeue")


def filters(lang: str, actions: dict) -> html.Div:
    options = [{"label": actions[a][1 if lang == "en" else 0], "value": a} for a in ACTIONS_ORDER if a in actions]
    return html.Div(className="wx-audit-filters", children=[
        dcc.Dropdown(id="audit-action", options=options, multi=True, placeholder=t("audit_action", lang),
                     className="wx-audit-action"),
        dcc.Input(id="audit-actor", type="text", maxLength=64, placeholder=t("audit_actor", lang),
                  className="wx-input", debounce=True),
        dcc.Input(id="audit-target", type="text", maxLength=64, placeholder=t("audit_target", lang),
                  className="wx-input", debounce=True),
        dcc.DatePickerRange(id="audit-range", display_format="YYYY-MM-DD", clearable=True,
                            start_date_placeholder_text=t("audit_from", lang),
                            end_date_placeholder_text=t("audit_to", lang)),
        html.A(t("export_csv", lang), id="audit-export", href="/api/v1/audit.csv", className="wx-btn wx-btn-light"),
    ])


def table(rows: list[dict], lang: str, actions: dict, total: int, shown: int) -> list:
    """The entries (``services.audit.as_dict`` with Beijing time in ``when``), newest first."""
    head = html.Tr([html.Th(t(k, lang)) for k in ("audit_when", "audit_actor", "audit_role", "audit_address",
                                                   "audit_action", "audit_target", "audit_detail")])
    body = []
    for r in rows:
        name = actions.get(r["action"], (r["action"], r["action"]))[1 if lang == "en" else 0]
        detail = "; ".join(f"{k}={v}" for k, v in (r.get("detail") or {}).items() if v not in (None, "", []))
        body.append(html.Tr(className=f"wx-audit-{r['action']}", children=[
            html.Td(r["when"]), html.Td(r["actor"]), html.Td(_role(r["role"], lang)), html.Td(r["address"] or ""),
            html.Td(name), html.Td(r["target"] or ""), html.Td(detail, className="wx-audit-detail")]))
    note = html.P(t("audit_count", lang, shown=shown, total=total), id="audit-count", className="wx-note")
    return [note, html.Table([html.Thead(head), html.Tbody(body)], className="wx-audit-table", id="audit-rows")]


def _role(role: str, lang: str) -> str:
    names = {**USER_ROLES, "token": ("API 令牌", "API token"), "cli": ("命令行", "command line"),
             "system": ("系统", "system"), "anonymous": ("未登录", "anonymous"), "-": ("—", "—")}
    pair = names.get(role)
    return pair[1 if lang == "en" else 0] if pair else role
