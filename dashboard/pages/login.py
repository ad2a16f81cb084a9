"""登录 Sign-in page (``/login``): user name and password, posted to ``POST /login`` (``dashboard/auth/views.py``)
as an ordinary form — it works without scripts, and the session cookie is set by the server. Chinese by default,
English with ``?lang=en``. Signed in already: who you are and a sign-out button.
"""
from __future__ import annotations

import re

from dash import dcc, html

from ..auth import current_user, safe_next
from ..domain.vocab import USER_ROLES as ROLES
from ..i18n import t
from ..services import units
from ..ui.shell import header


def layout(settings, lang: str, params: dict):
    target = safe_next(params.get("next"))
    user = current_user()
    messages = []
    if params.get("error"):
        messages.append(html.Div(t("login_error", lang), className="wx-msg wx-msg-error", id="login-error",
                                 role="alert"))
    if re.fullmatch(r"\d{2}:\d{2}", params.get("locked") or ""):
        messages.append(html.Div(t("login_locked", lang, until=params["locked"]), className="wx-msg wx-msg-error",
                                 id="login-locked", role="alert"))
    if params.get("denied"):
        messages.append(html.Div(t("login_denied", lang), className="wx-msg wx-msg-error", id="login-denied",
                                 role="alert"))
    body = [html.H2(t("login_title", lang)), *messages]
    if user is not None:
        role = ROLES[user.role][1 if lang == "en" else 0]
        body.append(html.Div(className="wx-signed-in", children=[
            html.P(t("login_as", lang, name=user.name, role=role), id="login-current"),
            html.Form(action="/logout", method="POST", children=[
                dcc.Input(type="hidden", name="lang", value=lang),
                html.Button(t("login_logout", lang), type="submit", className="wx-btn wx-btn-light",
                            id="logout-button")]),
        ]))
    body.append(html.Form(action="/login", method="POST", className="wx-login-form", id="login-form", children=[
        dcc.Input(type="hidden", name="next", value=target),
        dcc.Input(type="hidden", name="lang", value=lang),
        html.Label(t("login_user", lang), htmlFor="login-username"),
        dcc.Input(id="login-username", name="username", type="text", autoComplete="username", required=True,
                  maxLength=64, className="wx-input", autoFocus=True),
        html.Label(t("login_password", lang), htmlFor="login-password"),
        dcc.Input(id="login-password", name="password", type="password", autoComplete="current-password",
                  required=True, maxLength=256, className="wx-input"),
        html.Button(t("login_submit", lang), type="submit", className="wx-btn wx-btn-primary", id="login-submit"),
    ]))
    body.append(html.P(t("login_note", lang), className="wx-note"))
    return html.Div([header(lang, "/login", params, t("login_title", lang), place=units.title(lang)),
                     html.Main(html.Div(body, className="wx-login-card"), className="wx-login")])
