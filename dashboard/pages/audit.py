"""审计日志 Audit log (admins only): who did what, when, from where — filter by action, actor, target and days,
newest first, exported as CSV with the same filter. The log is append-only (``dashboard/store/audit.py``)."""
from __future__ import annotations

from dash import html

from ..i18n import t
from ..services import audit as audit_service
from ..ui import audit as ui
from ..services import units
from ..ui.shell import header


def layout(settings, lang: str, params: dict):
    return html.Div(className="wx-audit-page", children=[
        header(lang, "/audit", params, t("audit_title", lang), place=units.title(lang)),
        html.Main(className="wx-audit", children=[
            ui.filters(lang, audit_service.ACTIONS),
            html.Div(id="audit-msg", className="wx-msg", role="alert"),
            html.Div(id="audit-table"),
        ]),
    ])


def register_callbacks(app) -> None:
    from ..callbacks import audit

    audit.register(app)
