"""The ``users`` table (people who sign in: 值班员 duty officers, 领导 leaders, admins, the wall kiosk role) and its
repository. Passwords arrive here already hashed (``dashboard.auth.users`` hashes and checks them); every write
function commits the session it is given.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, bindparam, case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..domain.vocab import USER_ROLES as ROLES
from .models import Base, BigId, UTCDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # wrong passwords in a row
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")", name="ck_users_role"),
        Index("ix_users_username", "username", unique=True),
    )

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def name(self) -> str:
        return self.display_name or self.username


class DuplicateUser(ValueError):
    pass


def end_read(session: Session) -> None:
    """End the session's read transaction (before a write of its own: see ``store.sequence``)."""
    session.rollback()


def get_user(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def get_user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())


def insert_user(session: Session, *, username: str, password_hash: str, role: str, display_name: str | None,
                created_at: dt.datetime) -> User:
    """Store a new user (commits). Raises :class:`DuplicateUser` when the name is taken."""
    user = User(username=username, display_name=display_name or None, password_hash=password_hash, role=role,
                active=True, created_at=created_at)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise DuplicateUser(username) from None
    return user


def change_user(session: Session, user: User, *, password_hash: str | None = None, role: str | None = None,
                active: bool | None = None, display_name: str | None = None) -> User:
    """Change a user read in this session (commits). A new password also lifts a sign-in lock. A new password, a
    new role or disabling ends the user's sessions in the same transaction."""
    from .models import utcnow

    why = ("password" if password_hash is not None else "disabled" if active is False
           else "role" if role is not None and role != user.role else None)
    if why is not None:
        end_user_sessions(session, user.id, now=utcnow(), why=why, commit=False)
    if password_hash is not None:
        user.password_hash = password_hash
        user.failed_logins = 0
        user.locked_until = None
    if role is not None:
        user.role = role
    if active is not None:
        user.active = active
    if display_name is not None:
        user.display_name = display_name or None
    session.commit()
    return user


def clear_lock(session: Session, user: User) -> User:
    """Clear a sign-in lock and the failure count of a user read in this session (commits)."""
    user.failed_logins = 0
    user.locked_until = None
    session.commit()
    return user


def count_failure(session: Session, user_id: int, *, now: dt.datetime, max_failures: int,
                  lock_minutes: int) -> dt.datetime | None:
    """One more wrong password, counted in one UPDATE (``failed_logins + 1``: workers signing in at once cannot
    lose a failure); the ``max_failures``-th in a row locks the account for ``lock_minutes`` and starts the count
    again. Returns the account's ``locked_until`` after the update (commits)."""
    reached = User.failed_logins + 1 >= max(1, max_failures)
    until = bindparam("lock_until", now + dt.timedelta(minutes=lock_minutes), type_=UTCDateTime())
    locked_until = session.execute(update(User).where(User.id == user_id).values(
        failed_logins=case((reached, 0), else_=User.failed_logins + 1),
        locked_until=case((reached, until), else_=User.locked_until)).returning(User.locked_until)).scalar_one()
    session.commit()
    return locked_until


def record_sign_in(session: Session, user_id: int, *, now: dt.datetime) -> User | None:
    """A correct sign-in: stamp it and reset the failure count and lock (commits). Returns the user."""
    session.execute(update(User).where(User.id == user_id).values(last_login_at=now, failed_logins=0,
                                                                   locked_until=None))
    session.commit()
    return session.get(User, user_id)


# ------------------------------------------------------------------------------------ server-side sessions
class UserSession(Base):
    """A browser sign-in. The cookie holds a random id; this table keeps only its hash, so a copy of the table
    opens no session. A session ends (``ended_at``) at sign-out, password change, disabling, ``users logout`` or
    expiry: a replayed cookie of an ended session opens nothing."""
    __tablename__ = "user_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_why: Mapped[str | None] = mapped_column(String(16), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)


SESSION_ROWS_KEPT = dt.timedelta(days=30)  # ended or expired session rows are kept this long (the audit log stays)


def start_session(session: Session, *, id_hash: str, user_id: int, now: dt.datetime, expires_at: dt.datetime,
                  address: str | None) -> None:
    """Store a new session; rows of sessions that expired more than :data:`SESSION_ROWS_KEPT` ago go at the same
    time (sign-ins are rare: the table stays small without a background job)."""
    from sqlalchemy import delete

    session.execute(delete(UserSession).where(UserSession.expires_at < now - SESSION_ROWS_KEPT))
    session.add(UserSession(id_hash=id_hash, user_id=user_id, created_at=now, expires_at=expires_at,
                            address=(address or "")[:64] or None))
    session.commit()


def session_user(session: Session, id_hash: str, now: dt.datetime) -> User | None:
    """The active user of a live session (not ended, not expired), else None."""
    row = session.execute(
        select(User).join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.id_hash == id_hash, UserSession.ended_at.is_(None), UserSession.expires_at > now,
               User.active.is_(True))).scalar_one_or_none()
    end_read(session)
    return row


def live_session_users(session: Session, id_hashes, now: dt.datetime) -> dict[str, tuple[int, str, str]]:
    """``{id_hash: (user id, username, role)}`` of those sessions that are live (not ended, not expired) with an
    active user, in one read (the open live streams of a process re-check their sessions together)."""
    hashes = list(id_hashes)
    out: dict[str, tuple[int, str, str]] = {}
    for k in range(0, len(hashes), 500):
        rows = session.execute(
            select(UserSession.id_hash, User.id, User.username, User.role)
            .join(User, UserSession.user_id == User.id)
            .where(UserSession.id_hash.in_(hashes[k:k + 500]), UserSession.ended_at.is_(None),
                   UserSession.expires_at > now, User.active.is_(True))).all()
        out.update({r[0]: (r[1], r[2], r[3]) for r in rows})
    end_read(session)
    return out


def end_session(session: Session, id_hash: str, *, now: dt.datetime, why: str) -> int:
    n = session.execute(update(UserSession).where(UserSession.id_hash == id_hash, UserSession.ended_at.is_(None))
                        .values(ended_at=now, ended_why=why)).rowcount
    session.commit()
    return n


def end_user_sessions(session: Session, user_id: int, *, now: dt.datetime, why: str, commit: bool = True) -> int:
    """End every live session of a user; returns how many."""
    n = session.execute(update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
                        .values(ended_at=now, ended_why=why)).rowcount
    if commit:
        session.commit()
    return n


def live_sessions(session: Session, user_id: int, now: dt.datetime) -> int:
    from sqlalchemy import func

    n = session.execute(select(func.count()).select_from(UserSession).where(
        UserSession.user_id == user_id, UserSession.ended_at.is_(None), UserSession.expires_at > now)).scalar_one()
    end_read(session)
    return int(n)
