"""Sign-in and roles (登录与权限).

Roles: ``wall`` (the kiosk display: read-only, never personal data), ``leader`` (read), ``duty_officer`` (read and
act: lifecycle steps, acknowledging alerts), ``admin`` (as duty officer; user management is the CLI
``python -m dashboard users``).

Who needs what (documented in README "Sign-in and roles"):

- ``/`` overview map, the read API (``GET /api/v1/…``, ``/api/map/…``, ``/api/geo/…``): anyone.
- ``/incidents`` duty page and the exports: a signed-in leader, duty officer or admin.
- ``/wall``: any signed-in user, or a kiosk token from ``WALL_TOKENS`` (``/wall?token=…`` starts a read-only
  wall session in the browser's cookie).
- Acting (lifecycle steps in the UI, acknowledging alerts): a duty officer or admin session — checked on the
  server in every callback and route that writes, not only by hiding buttons. Machine clients keep using
  ``Authorization: Bearer <API_TOKENS>`` on the HTTP API.

Sessions are Flask's signed cookie (``SameSite=Lax``, ``HttpOnly``); a state-changing request that rides on the
session must also come from this origin (``Origin``, else ``Referer``), which stops cross-site request forgery.
The session keeps the user id and a fingerprint of the password hash, and every check re-reads the user, so
disabling a user or changing the password ends their sessions.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import g, has_request_context, request, session

from ..domain.vocab import USER_ROLES as ROLES

READ_ROLES = frozenset({"leader", "duty_officer", "admin"})  # the duty page, exports, detail with personal data
ACT_ROLES = frozenset({"duty_officer", "admin"})  # lifecycle steps and acknowledging alerts
ANY_ROLE = frozenset(ROLES)
PERSONAL_DATA_ROLES = READ_ROLES  # reporter phone numbers: never for the wall

__all__ = ["ROLES", "READ_ROLES", "ACT_ROLES", "ANY_ROLE", "PERSONAL_DATA_ROLES", "CurrentUser", "AuthError",
           "current_user", "authorize", "same_origin", "login_session", "wall_session", "logout_session",
           "valid_wall_token", "safe_next"]


@dataclass(frozen=True)
class CurrentUser:
    id: int | None  # None for a kiosk (token) session
    username: str
    name: str
    role: str
    kiosk: bool = False

    @property
    def can_act(self) -> bool:
        return self.role in ACT_ROLES

    @property
    def can_read(self) -> bool:
        return self.role in READ_ROLES


class AuthError(Exception):
    """401 (not signed in), 403 (role not allowed or cross-site request)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _load_user() -> CurrentUser | None:
    data = session.get("wx_auth")
    if not isinstance(data, dict):
        return None
    from ..context import services

    if data.get("kiosk"):  # valid while its token is configured: removing it from WALL_TOKENS ends the session
        marks = [token_mark(t) for t in services().settings.wall_tokens if t]
        if not valid_wall_token(str(data.get("tk") or ""), marks):
            return None
        return CurrentUser(None, "wall", "wall", "wall", kiosk=True)
    from ..store.users import get_user_by_id
    from .users import password_version

    maker = services().sessions
    if maker is None or not isinstance(data.get("uid"), int):
        return None
    with maker() as s:
        user = get_user_by_id(s, data["uid"])
        if user is None or not user.active or password_version(user) != data.get("pwv"):
            return None
        return CurrentUser(user.id, user.username, user.name, user.role)


def current_user() -> CurrentUser | None:
    """The signed-in user of this request (None when anonymous or outside a request). Read once per request."""
    if not has_request_context():
        return None
    if "wx_user" not in g:
        g.wx_user = _load_user()
    return g.wx_user


def same_origin() -> bool:
    """True when the request comes from a page of this site (``Origin``, else ``Referer``)."""
    expected = f"{request.scheme}://{request.host}".lower()
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin.rstrip("/").lower() == expected
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == expected
    return False


def authorize(roles=ACT_ROLES, *, write: bool = True) -> CurrentUser:
    """The current user if their role is in ``roles``; raises :class:`AuthError` otherwise.

    ``write=True`` (state-changing) also requires the request to come from this origin (CSRF).
    """
    user = current_user()
    if user is None:
        raise AuthError(401, "unauthorized", "sign in first (/login)")
    if user.role not in roles:
        raise AuthError(403, "forbidden", f"the role {user.role} may not do this; needs one of {', '.join(sorted(roles))}")
    if write and not same_origin():
        raise AuthError(403, "cross_site", "the request does not come from this site (Origin/Referer)")
    return user


def login_session(user) -> None:
    from .users import password_version

    session.clear()
    session.permanent = True
    session["wx_auth"] = {"uid": user.id, "pwv": password_version(user)}
    g.pop("wx_user", None)


def token_mark(token: str) -> str:
    """What a kiosk session keeps of its token: enough to tell whether that token is still configured, not the
    token itself (the cookie is only signed, not encrypted)."""
    return hashlib.sha256(("wx-kiosk:" + token).encode("utf-8", "replace")).hexdigest()[:32]


def wall_session(token: str) -> None:
    session.clear()
    session.permanent = True
    session["wx_auth"] = {"kiosk": True, "tk": token_mark(token)}
    g.pop("wx_user", None)


def logout_session() -> None:
    session.clear()
    g.pop("wx_user", None)


def valid_wall_token(token: str | None, wall_tokens) -> bool:
    if not token:
        return False
    ok = False
    for t in wall_tokens:
        if t and hmac.compare_digest(t.encode("utf-8", "replace"), token.encode("utf-8", "replace")):
            ok = True
    return ok


def safe_next(target: str | None, default: str = "/incidents") -> str:
    """A local path to go back to after signing in (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target
