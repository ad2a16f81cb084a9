"""Users: create, authenticate (with the sign-in lockout), change, list — and the demo users for ``make run``.

Passwords are hashed with werkzeug's ``generate_password_hash`` (scrypt); only the hash is stored. The rows are
read and written by the store's user repository (``dashboard.store.users``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re

from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from ..domain.vocab import USER_ROLES as ROLES
from ..store import users as store
from ..store.models import utcnow
from ..store.users import User

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8
HASH_METHOD = "scrypt"
# verified against when the user does not exist, so a wrong name costs as much time as a wrong password
_DUMMY_HASH = "scrypt:32768:8:1$0n9iKwHwbkV2NAqc$7cd4bfc2af390bb5b65f630d429c8d0d53b313e6d6e7f41c9752b5384fd29da780d3a7ba2b9f63506ea66880b44c7a445a7138d66f6b5d8048b3d08339412428"  # of a throw-away string

# Demo-only accounts created under `make run` (DEMO_USERS=1). Never enable in production.
DEMO_USERS: tuple[tuple[str, str, str, str], ...] = (
    ("duty", "duty-demo", "duty_officer", "值班员（演示）"),
    ("leader", "leader-demo", "leader", "领导（演示）"),
)


# 等保 "登录失败处理": this many wrong passwords in a row lock the account for LOCK_MINUTES (settings override both)
MAX_FAILURES = 5
LOCK_MINUTES = 15


class AccountLocked(Exception):
    """Sign-in refused without checking the password: too many wrong passwords in a row. ``until`` is UTC."""

    def __init__(self, until: dt.datetime):
        super().__init__(f"locked until {until.isoformat(timespec='seconds')}")
        self.until = until


class UserError(ValueError):
    """A refused user change; ``field`` names the offending input."""

    def __init__(self, message: str, field: str = "username"):
        super().__init__(message)
        self.field = field


def validate(username: str, role: str, password: str | None) -> None:
    if not USERNAME_RE.match(username or ""):
        raise UserError("username must be 1-64 characters of letters, digits, _ . @ -", "username")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}", "role")
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters", "password")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def get_user(session: Session, username: str) -> User | None:
    return store.get_user(session, username)


def add_user(session: Session, username: str, password: str, role: str, *, display_name: str | None = None,
             now: dt.datetime | None = None) -> User:
    """Create a user (commits). Raises :class:`UserError` for bad input or an existing name."""
    validate(username, role, password)
    try:
        return store.insert_user(session, username=username, password_hash=hash_password(password), role=role,
                                 display_name=display_name, created_at=now or utcnow())
    except store.DuplicateUser:
        raise UserError(f"user {username!r} already exists", "username") from None


def update_user(session: Session, username: str, *, password: str | None = None, role: str | None = None,
                active: bool | None = None, display_name: str | None = None) -> User:
    user = get_user(session, username)
    if user is None:
        store.end_read(session)
        raise UserError(f"no user {username!r}", "username")
    validate(username, role or user.role, password)
    # an administrator setting a new password also lifts a sign-in lock
    return store.change_user(session, user, password_hash=hash_password(password) if password is not None else None,
                             role=role, active=active, display_name=display_name)


def list_users(session: Session) -> list[User]:
    return store.list_users(session)


def end_sessions(session: Session, username: str) -> int:
    """End every live session of a user (``users logout``); returns how many."""
    user = get_user(session, username)
    if user is None:
        store.end_read(session)
        raise UserError(f"no user {username!r}", "username")
    return store.end_user_sessions(session, user.id, now=utcnow(), why="logout_all")


def authenticate(session: Session, username: str, password: str, *, now: dt.datetime | None = None,
                 max_failures: int = MAX_FAILURES, lock_minutes: int = LOCK_MINUTES,
                 shadow_cache=None) -> User | None:
    """The active user with that name and password, else None (same work either way). Records the sign-in.

    A wrong password counts against the account; the ``max_failures``-th in a row locks it for
    ``lock_minutes`` (the count starts again after the lock). While locked, :class:`AccountLocked` is raised
    whatever the password. Counting is one UPDATE (``failed_logins + 1``), so workers signing in at once
    cannot lose a failure. With ``shadow_cache`` (the shared cache), a name that is no account locks the same
    way (:func:`shadow_lock`), so a lock does not tell real accounts from made-up ones."""
    now = now or utcnow()
    user = get_user(session, username) if username and USERNAME_RE.match(username) else None
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None:
        store.end_read(session)
        until = shadow_lock(shadow_cache, username, now, max_failures=max_failures, lock_minutes=lock_minutes) \
            if shadow_cache is not None else None
        if until is not None:
            raise AccountLocked(until)
        return None
    user_id, locked_until, active = user.id, user.locked_until, user.active
    # Writes go in transactions of their own that start with the write: on SQLite a transaction that read first
    # cannot take the write lock if another worker (the live feed, say) wrote meanwhile.
    store.end_read(session)
    if locked_until is not None and locked_until > now:
        raise AccountLocked(locked_until)
    if not ok:
        locked_until = store.count_failure(session, user_id, now=now, max_failures=max_failures,
                                           lock_minutes=lock_minutes)
        if locked_until is not None and locked_until > now:
            raise AccountLocked(locked_until)
        return None
    if not active:
        return None
    return store.record_sign_in(session, user_id, now=now)


def shadow_lock(cache, username: str, now: dt.datetime, *, max_failures: int = MAX_FAILURES,
                lock_minutes: int = LOCK_MINUTES) -> dt.datetime | None:
    """The lockout played for a name that is no account, after one more failed attempt with it: counted in the
    shared cache (file system or Redis; per name, case-insensitive). Returns the end of the lock, if any."""
    key = "login-shadow:" + hashlib.sha256((username or "").strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
    state = cache.get(key) or {"n": 0, "until": None}
    until = dt.datetime.fromisoformat(state["until"]) if state.get("until") else None
    if until is not None and until > now:
        return until
    n = int(state.get("n", 0)) + 1
    if n >= max(1, max_failures):
        until = now + dt.timedelta(minutes=lock_minutes)
        cache.set(key, {"n": 0, "until": until.isoformat()}, timeout=lock_minutes * 60 + 60)
        return until
    cache.set(key, {"n": n, "until": None}, timeout=lock_minutes * 60 + 60)
    return None


def unlock_user(session: Session, username: str) -> User:
    """Clear a sign-in lock and the failure count (commits)."""
    user = get_user(session, username)
    if user is None:
        store.end_read(session)
        raise UserError(f"no user {username!r}", "username")
    return store.clear_lock(session, user)


def password_version(user: User) -> str:
    """A short fingerprint of the stored hash: kept in the session so a password change signs the user out."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def seed_demo_users(sessions: sessionmaker) -> list[str]:
    """Create the demo accounts (``duty``/``duty-demo`` duty officer, ``leader``/``leader-demo`` leader) when
    they do not exist yet; existing accounts are left alone. Returns the names created. Demo only.

    Several gunicorn workers run this at once: on SQLite a transaction that read first cannot take the write
    lock while another worker writes ("database is locked" at once, whatever the busy timeout), so a locked
    attempt is retried on a fresh transaction."""
    import time

    from sqlalchemy.exc import OperationalError

    created = []
    for username, password, role, display in DEMO_USERS:
        for attempt in range(8):
            try:
                with sessions() as s:
                    if get_user(s, username) is None:
                        add_user(s, username, password, role, display_name=display)
                        created.append(username)
                break
            except UserError:  # created meanwhile by another worker
                break
            except OperationalError:
                if attempt == 7:
                    raise
                time.sleep(0.1 * (attempt + 1))
    return created