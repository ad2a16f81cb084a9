"""告警推送 Alert push (admins only): the configured group robots (URLs masked) and the outbox — each alert's
message per channel with its state, attempts, next attempt, last error and when it was sent — refreshed every few
seconds, with a requeue button on each message given up (audited). See ``dashboard/services/notify.py``."""
from __future__ import annotations

from dash import dcc, html

from ..i18n import t
from ..services import notify as notify_service
from ..ui import notify as ui
from ..services import units
from ..ui.shell import header

REFRESH_MS = 5_000


def layout(settings, lang: str, params: dict):
    return html.Div(className="wx-notify-page", children=[
        header(lang, "/notify", params, t("notify_page_title", lang), place=units.title(lang)),
        html.Main(className="wx-notify", children=[
            html.H3(t("notify_channels", lang)),
            ui.channels_table(notify_service.channel_rows(settings, lang), lang),
            html.H3(t("notify_outbox", lang)),
            html.Div(className="wx-notify-bar", children=[ui.state_filter(lang)]),
            html.Div(id="notify-msg", className="wx-msg", role="alert"),
            html.Div(id="notify-table"),
            dcc.Interval(id="notify-tick", interval=REFRESH_MS),
            dcc.Store(id="notify-requeued"),
        ]),
    ])


def register_callbacks(app) -> None:
    from ..callbacks import notify

    notify.register(app)
