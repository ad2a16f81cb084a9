"""Sign-in and roles (登录与权限).

Roles: ``wall`` (the kiosk display: read-only, never personal data), ``leader`` (read), ``duty_officer`` (read and
act: lifecycle steps, acknowledging alerts), ``admin`` (as duty officer; user management is the CLI
``python -m dashboard users``).

Private by default: who needs what is decided in one place, :mod:`dashboard.auth.policy` (documented in README
"Sign-in and roles"). In short: every page, the read API, the map data and every Dash callback need a signed-in
user or a token of the right scope; the wall's kiosk session reads what the wall shows and nothing else;
``PUBLIC_OVERVIEW=1`` opens the overview map (aggregates and anonymised markers) to anyone.

Machine clients use ``Authorization: Bearer <token>`` with a token of ``API_TOKENS``; each token has scopes
(:data:`SCOPES`): ``ingest`` (post incidents and lifecycle steps), ``read`` (the read API, no personal data),
``personal`` (reporters and their phone numbers as well). ``token:ingest+read`` names them; a bare ``token`` has
all three (the meaning API_TOKENS always had).

Personal data by audience (:func:`audience`): ``personal`` (duty officers, admins, tokens with the ``personal``
scope) sees reporters, phone numbers and the residents' names an incident marks (``persons``); ``staff``
(leaders, read tokens) sees staff names but not reporters nor marked names; ``public`` (the wall, the public
overview) sees neither.

Sessions live on the server (``user_sessions``): the signed cookie (``wx_session``, ``SameSite=Lax``,
``HttpOnly``, ``Secure`` with ``SESSION_COOKIE_SECURE=1``) holds only a random session id, and every request reads
the session row and the user; signing out, a new password, a new role, disabling the user or ``users logout`` end
the row, so a replayed cookie opens nothing. A state-changing request that rides on the session must also come
from this origin (``Origin``, else ``Referer``), which stops cross-site request forgery.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import g, has_request_context, request, session

from ..domain.vocab import USER_ROLES as ROLES

READ_ROLES = frozenset({"leader", "duty_officer", "admin"})  # the overview, duty page, read API, exports
ACT_ROLES = frozenset({"duty_officer", "admin"})  # lifecycle steps and acknowledging alerts
ANY_ROLE = frozenset(ROLES)
PERSONAL_DATA_ROLES = ACT_ROLES  # reporters, phone numbers, marked residents' names: not leaders, never the wall
SCOPES = ("ingest", "read", "personal")  # what an API token may do (see the module docstring)
TOKEN_ROLE = "token"  # the role of a request authorised by a bearer token (not a user role)
AUDIENCES = ("personal", "staff", "public")

__all__ = ["ROLES", "READ_ROLES", "ACT_ROLES", "ANY_ROLE", "PERSONAL_DATA_ROLES", "SCOPES", "AUDIENCES",
           "CurrentUser", "AuthError", "current_user", "current_principal", "audience", "authorize", "same_origin",
           "login_session", "wall_session", "logout_session", "valid_wall_token", "safe_next", "token_scopes",
           "parse_token_entry", "bearer_token", "SessionChecks", "session_checks", "session_hash", "still_valid"]


@dataclass(frozen=True)
class CurrentUser:
    """Who asks: a signed-in user, a kiosk (wall token) session, or a bearer token (``role == "token"``)."""
    id: int | None  # None for a kiosk session or a token
    username: str
    name: str
    role: str
    kiosk: bool = False
    scopes: frozenset = frozenset()  # a token's scopes (users have none: their role decides)

    @property
    def can_act(self) -> bool:
        return self.role in ACT_ROLES

    @property
    def can_read(self) -> bool:
        """May read incidents (the read API, the overview, the duty list)."""
        return self.role in READ_ROLES or "read" in self.scopes


def parse_token_entry(entry: str) -> tuple[str, frozenset]:
    """``"tok"`` -> (tok, every scope); ``"tok:read+ingest"`` -> (tok, {read, ingest}). A suffix that is not a list
    of known scopes is part of the token."""
    token, sep, suffix = entry.rpartition(":")
    if sep and token:
        names = [n.strip() for n in suffix.replace(",", "+").split("+") if n.strip()]
        if names and all(n in SCOPES for n in names):
            scopes = set(names)
            if "personal" in scopes:
                scopes.add("read")
            return token, frozenset(scopes)
    return entry, frozenset(SCOPES)


def token_scopes(token: str | None, entries) -> frozenset | None:
    """The scopes of ``token`` among the configured ``entries`` (API_TOKENS); None when it is not one of them.
    Compared in constant time against every entry."""
    if not token:
        return None
    found = None
    raw = token.encode("utf-8", "replace")
    for entry in entries:
        if not entry:
            continue
        tok, scopes = parse_token_entry(entry)
        if hmac.compare_digest(tok.encode("utf-8", "replace"), raw) and found is None:
            found = scopes
    return found


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer …`` header of this request."""
    if not has_request_context():
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def token_principal(token: str) -> CurrentUser | None:
    from ..context import services

    scopes = token_scopes(token, services().settings.api_tokens)
    if scopes is None:
        return None
    return CurrentUser(None, "token:" + token_mark(token)[:8], "API", TOKEN_ROLE, scopes=scopes)


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
    from ..store.models import utcnow
    from ..store.users import session_user

    maker = services().sessions
    sid = data.get("sid")
    if maker is None or not isinstance(sid, str) or not 20 <= len(sid) <= 100:
        return None
    with maker() as s:  # the session row: ended at sign-out, password change, disabling, `users logout`
        user = session_user(s, session_id_hash(sid), utcnow())
        if user is None:
            return None
        return CurrentUser(user.id, user.username, user.name, user.role)


class SessionChecks:
    """The sessions of this process's long-lived responses (the live streams), re-read together: one read of every
    session asked for in the last minutes, at most every ``max_age`` seconds, instead of one read per stream and
    heartbeat (200 open streams made 800 reads a minute). A session not in the last read is read at once (with the
    others). Held by the app (``app.extensions``), one per process."""

    def __init__(self, max_age: float = 7.5, forget_after: float = 120.0):
        import threading

        self.max_age, self.forget_after = max_age, forget_after
        self._lock = threading.Lock()
        self._asked: dict[str, float] = {}  # id hash -> when last asked (monotonic)
        self._read: dict[str, tuple] = {}  # the last read: id hash -> (user id, username, role) of live ones
        self._read_for: set[str] = set()  # the hashes that read asked for
        self._read_at = float("-inf")
        self.reads = 0  # how many reads this process made (tests, benches)

    def user_of(self, id_hash: str) -> tuple | None:
        """(user id, username, role) of the live session ``id_hash``, as read at most ``max_age`` s ago."""
        import time

        from ..context import services
        from ..store.models import utcnow
        from ..store.users import live_session_users

        with self._lock:  # one read at a time; the others take its answer
            t = time.monotonic()
            self._asked[id_hash] = t
            if id_hash not in self._read_for or t - self._read_at >= self.max_age:
                self._asked = {h: at for h, at in self._asked.items() if t - at < self.forget_after}
                maker = services().sessions
                if maker is None:
                    return None
                with maker() as s:
                    self._read = live_session_users(s, self._asked, utcnow())
                self._read_for, self._read_at = set(self._asked), t
                self.reads += 1
            return self._read.get(id_hash)


def session_checks(max_age: float) -> SessionChecks:
    """This app's :class:`SessionChecks` (made on first use)."""
    from flask import current_app

    checks = current_app.extensions.get("wx_session_checks")
    if checks is None:
        checks = current_app.extensions.setdefault("wx_session_checks", SessionChecks(max_age=max_age))
    return checks


def session_hash() -> str | None:
    """The store's hash of this request's sign-in session id (None without one, or for a kiosk session)."""
    data = session.get("wx_auth") if has_request_context() else None
    sid = data.get("sid") if isinstance(data, dict) and not data.get("kiosk") else None
    return session_id_hash(sid) if isinstance(sid, str) and 20 <= len(sid) <= 100 else None


def still_valid(who: CurrentUser | None, id_hash: str | None = None, max_age: float = 7.5) -> bool:
    """Whether ``who`` (the principal a long-lived response, e.g. the live stream, started for) is still who asks:
    re-read, not from the request's cache, so a sign-out, password change, disabling, role change or
    ``users logout`` in the meantime ends what it was reading. A signed-in user's session given by ``id_hash``
    (:func:`session_hash` at the start) is read with the process's other streams' (:class:`SessionChecks`, at most
    ``max_age`` s old); a kiosk session or a token is checked against the settings, as each request is."""
    if who is None:
        return False
    if id_hash is not None and who.id is not None and not who.kiosk and not who.scopes and bearer_token() is None:
        row = session_checks(max_age).user_of(id_hash)
        return row is not None and row == (who.id, who.username, who.role)
    g.pop("wx_user", None)
    g.pop("wx_principal", None)
    now = current_principal()
    return now is not None and (now.id, now.username, now.role, now.kiosk, now.scopes) == (
        who.id, who.username, who.role, who.kiosk, who.scopes)


def session_id_hash(sid: str) -> str:
    """What the store keeps of a session id (the cookie holds the id itself)."""
    return hashlib.sha256(("wx-session:" + sid).encode("utf-8", "replace")).hexdigest()


def current_user() -> CurrentUser | None:
    """The signed-in user of this request (None when anonymous or outside a request). Read once per request."""
    if not has_request_context():
        return None
    if "wx_user" not in g:
        g.wx_user = _load_user()
    return g.wx_user


def current_principal() -> CurrentUser | None:
    """Who asks: the bearer token of the request when it sends one (None when that token is not valid), else the
    session's user. Read once per request."""
    if not has_request_context():
        return None
    if "wx_principal" not in g:
        token = bearer_token()
        g.wx_principal = token_principal(token) if token is not None else current_user()
    return g.wx_principal


def audience(who: CurrentUser | None) -> str:
    """``personal``, ``staff`` or ``public``: which personal data ``who`` may see (see the module docstring)."""
    if who is None or who.kiosk:
        return "public"
    if who.role in PERSONAL_DATA_ROLES or "personal" in who.scopes:
        return "personal"
    if who.can_read:
        return "staff"
    return "public"


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


def login_session(user, hours: int) -> None:
    """Start a server-side session of ``user`` (a row in ``user_sessions``) and put its id in the cookie."""
    import datetime as dt
    import secrets

    from ..context import services
    from ..store.models import utcnow
    from ..store.users import start_session

    sid = secrets.token_urlsafe(32)
    now = utcnow()
    with services().sessions() as s:
        start_session(s, id_hash=session_id_hash(sid), user_id=user.id, now=now,
                      expires_at=now + dt.timedelta(hours=hours), address=request.remote_addr)
    session.clear()
    session.permanent = True
    session["wx_auth"] = {"sid": sid}
    g.pop("wx_user", None)
    g.pop("wx_principal", None)


def token_mark(token: str) -> str:
    """What a kiosk session keeps of its token: enough to tell whether that token is still configured, not the
    token itself (the cookie is only signed, not encrypted)."""
    return hashlib.sha256(("wx-kiosk:" + token).encode("utf-8", "replace")).hexdigest()[:32]


def wall_session(token: str) -> None:
    session.clear()
    session.permanent = True
    session["wx_auth"] = {"kiosk": True, "tk": token_mark(token)}
    g.pop("wx_user", None)
    g.pop("wx_principal", None)


def logout_session() -> None:
    """End this browser's session on the server (a replayed cookie opens nothing) and clear the cookie."""
    data = session.get("wx_auth")
    if isinstance(data, dict) and isinstance(data.get("sid"), str):
        from ..context import services
        from ..store.models import utcnow
        from ..store.users import end_session

        with services().sessions() as s:
            end_session(s, session_id_hash(data["sid"]), now=utcnow(), why="logout")
    session.clear()
    g.pop("wx_user", None)
    g.pop("wx_principal", None)


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
