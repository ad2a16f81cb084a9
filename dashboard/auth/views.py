"""HTTP side of sign-in: ``POST /login``, ``POST /logout``, the page gates and the wall kiosk token.

The sign-in *page* is the Dash page ``/login`` (``dashboard/pages/login.py``); its form posts here.
"""
from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request

from .. import ratelimit
from ..context import services
from ..services import audit
from . import (current_principal, current_user, login_session, logout_session, policy, safe_next, same_origin,
               valid_wall_token, wall_session)

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

SESSION_HOURS = 12


def _lang_suffix(lang: str | None) -> dict:
    return {"lang": "en"} if lang == "en" else {}


def login_url(next_path: str, lang: str | None = None, **extra) -> str:
    return "/login?" + urlencode({"next": next_path, **extra, **_lang_suffix(lang)})


def _too_many(refused, lang: str | None, target: str) -> Response:
    """429 for the sign-in form: a page that says how long to wait, with ``Retry-After``."""
    from html import escape

    text = ratelimit.message(refused, "en" if lang == "en" else "zh")
    body = (f'<!doctype html><meta charset="utf-8"><title>429</title><p id="login-rate-limited">{escape(text)}</p>'
            f'<p><a href="{escape(login_url(target, lang))}">{"Back to sign-in" if lang == "en" else "返回登录"}</a></p>')
    resp = Response(body, status=429, mimetype="text/html")
    resp.headers["Retry-After"] = str(refused.retry_after)
    return resp


def _forbidden(message: str) -> Response:
    return Response(message, status=403, mimetype="text/plain")  # Flask adds "; charset=utf-8"


@bp.post("/login")
def login_post():
    from ..domain.timefmt import CLOCK, beijing
    from ..store.models import utcnow
    from .users import AccountLocked, authenticate

    lang = request.form.get("lang")
    target = safe_next(request.form.get("next"))
    if not same_origin():
        return _forbidden("403: the sign-in form must be sent from this site / 请从本站登录页提交")
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    for rule, key in (("login_address", request.remote_addr or "?"), ("login_name", username.lower()[:64])):
        refused = ratelimit.enforce(rule, key)  # on top of the lockout: guessing across accounts or from many
        if refused is not None:
            log.warning("sign-in rate limit %s reached for %r from %s", rule, username[:64], request.remote_addr)
            return _too_many(refused, lang, target)
    svc = services()
    try:
        with svc.sessions() as s:
            user = authenticate(s, username, password, now=utcnow(), max_failures=svc.settings.login_max_failures,
                                lock_minutes=svc.settings.login_lock_minutes, shadow_cache=svc.cache)
    except AccountLocked as locked:
        log.warning("sign-in refused for %r from %s: locked until %s", username[:64], request.remote_addr,
                    locked.until.isoformat(timespec="seconds"))
        audit.record("locked", username[:64], {"until": locked.until.isoformat(timespec="seconds")},
                     actor=username[:64] or "?", role="-")
        until = beijing(locked.until, CLOCK)
        return redirect(login_url(target, lang, locked=until), code=303)
    if user is None:
        log.warning("failed sign-in for %r from %s", username[:64], request.remote_addr)
        audit.record("sign_in_failed", username[:64], actor=username[:64] or "?", role="-")
        return redirect(login_url(target, lang, error="1"), code=303)
    login_session(user, SESSION_HOURS)
    audit.record("sign_in", user.username, actor=user.username, role=user.role)
    log.info("sign-in: %s (%s)", user.username, user.role)
    return redirect(target, code=303)


@bp.post("/logout")
def logout_post():
    if not same_origin():
        return _forbidden("403: cross-site request refused")
    lang = request.form.get("lang")
    who = current_user()
    logout_session()
    if who is not None and not who.kiosk:
        audit.record("sign_out", who.username, actor=who.username, role=who.role)
    return redirect("/login" + ("?lang=en" if lang == "en" else ""), code=303)


def gate_pages():
    """``before_request``: the page gates of :mod:`dashboard.auth.policy` (anonymous users are sent to sign in,
    a signed-in user whose role may not open the page too, with a note) and the kiosk token exchange:
    ``/wall?token=…`` with a valid token starts a wall session and redirects to the same address without the
    token, so it stays neither in the address bar, the history nor a Referer."""
    if request.method not in ("GET", "HEAD") or request.path not in policy.PAGE_ACCESS:
        return None
    lang = request.args.get("lang")
    if request.path == "/wall" and "token" in request.args:
        token = request.args.get("token")
        if not valid_wall_token(token, services().settings.wall_tokens):
            return _forbidden("403: this kiosk token is not valid (WALL_TOKENS) / 大屏令牌无效")
        if current_user() is None:
            wall_session(token)
            audit.record("kiosk_session", None, {"token": audit.token_mark(token)}, actor="kiosk", role="wall")
        rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
        resp = redirect("/wall" + ("?" + urlencode(rest) if rest else ""), code=303)
        resp.headers["Cache-Control"] = "no-store"
        return resp
    who = current_principal()
    if policy.page_allowed(request.path, services().settings, who):
        return None
    if who is None:
        query = request.query_string.decode("utf-8", "replace")
        return redirect(login_url(request.path + ("?" + query if query else ""), lang), code=302)
    return redirect(login_url(request.path, lang, denied="1"), code=302)


def setup(server) -> None:
    """Session cookie settings, the sign-in routes, the page gates, and the demo users when enabled."""
    settings = services_settings(server)
    server.config["SESSION_COOKIE_NAME"] = "wx_session"  # Flask's default "session" is always set: not a default here
    server.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    server.config["SESSION_COOKIE_HTTPONLY"] = True
    server.config["SESSION_COOKIE_SECURE"] = bool(getattr(settings, "session_cookie_secure", False))  # HTTPS
    # only a response that changed the session sets the cookie: a live-tick request still in flight when the
    # officer signs out must not hand the old session cookie back to the browser
    server.config["SESSION_REFRESH_EACH_REQUEST"] = False
    server.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(hours=SESSION_HOURS)
    server.register_blueprint(bp)
    server.before_request(gate_pages)
    with server.app_context():  # the audit log notes added and removed API / wall tokens since the last start
        audit.note_token_changes(settings)
    if getattr(settings, "demo_users", False):
        from .users import seed_demo_users

        created = seed_demo_users(server.extensions["dashboard"].sessions)
        if created:
            log.warning("demo users created (DEMO_USERS=1, demo only): %s", ", ".join(created))


def services_settings(server):
    return server.extensions["dashboard"].settings
