"""The notification outbox (告警推送): one row per (alert, channel), written in the transaction that raises the alert.

A row is the promise "this alert goes to this group robot". It is inserted by :func:`enqueue`, which
``store.alerts.raise_for_new_incident`` calls inside the incident's transaction: when that commits, the rows are
there, so an acknowledged incident's alert cannot be lost between the store and the sender. ``(channel,
alert_key)`` is unique, so nothing is queued twice.

Where a new alert goes (the configured channel keys, the least severity) rides on the session factory:
``session_factory(engine, notify=Routes(...))`` puts a :class:`Routes` into every session's ``info``; a session
without one (CLI tools, bare test factories) queues nothing.

Dispatchers (``services.notify``) take due rows with :func:`claim`: PostgreSQL selects them ``FOR UPDATE SKIP
LOCKED`` and stamps a lease (owner token, ``lease_until``) in the same transaction; SQLite stamps them with one
conditional ``UPDATE`` (its single writer lock makes the check and the stamp one step). A row under a live lease is
claimed by nobody else. :func:`mark_sent` / :func:`mark_failed` only touch a row that still carries the caller's
token, so a dispatcher whose lease ran out cannot overwrite the one that took the row over.

States: ``pending`` (waiting for ``next_attempt_at``, or leased while being sent), ``sent``, ``dead`` (gave up
after the last attempt; :func:`requeue` puts it back).
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from .alerts import Alert
from .models import Base, BigId, Incident, UTCDateTime, utcnow

STATES = ("pending", "sent", "dead")
ROUTES_KEY = "notify_routes"  # the key of :class:`Routes` in ``Session.info``
ERROR_MAX = 300


@dataclass(frozen=True)
class Routes:
    """Where new alerts are queued: the configured channel keys (``services.notify.Channel.key``) and the least
    incident severity of a high-severity alert that is sent (a hazardous-chemical ring alert always is)."""

    channels: tuple[str, ...]
    min_severity: int = 3


class OutboxRow(Base):
    __tablename__ = "notify_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id", ondelete="CASCADE"))
    alert_key: Mapped[str] = mapped_column(String(64))  # the message id receivers see (stable per alert)
    channel: Mapped[str] = mapped_column(String(48))
    state: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    alert: Mapped[Alert] = relationship(Alert, lazy="raise")

    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sent', 'dead')", name="ck_notify_outbox_state"),
        CheckConstraint("attempts >= 0", name="ck_notify_outbox_attempts"),
        UniqueConstraint("channel", "alert_key", name="uq_notify_outbox_channel_alert"),
        Index("ix_notify_outbox_due", "state", "next_attempt_at"),
        Index("ix_notify_outbox_alert_id", "alert_id"),
    )


class OutboxRowNotFound(LookupError):
    pass


def alert_key(incident_code: str) -> str:
    """The stable message id of an incident's alert (one alert per incident; incident codes are unique)."""
    return f"alert-{incident_code}"


# --------------------------------------------------------------------------------------------- enqueue
def enqueue(session: Session, alert: Alert, *, severity: int, incident_code: str,
            now: dt.datetime | None = None) -> list[OutboxRow]:
    """Queue ``alert`` for every channel of the session's :class:`Routes` (none: nothing). Called inside the
    transaction that adds the alert (its id comes with the same flush); does not commit."""
    routes = session.info.get(ROUTES_KEY)
    if not isinstance(routes, Routes) or not routes.channels:
        return []
    if alert.kind != "hazchem_ring" and severity < routes.min_severity:
        return []
    now = now or utcnow()
    key = alert_key(incident_code)
    rows = [OutboxRow(alert=alert, alert_key=key, channel=ch, state="pending", attempts=0, next_attempt_at=now,
                      created_at=now) for ch in dict.fromkeys(routes.channels)]
    session.add_all(rows)
    return rows


# ----------------------------------------------------------------------------------------- dispatching
@dataclass(frozen=True)
class Claimed:
    """A row claimed for sending, with what the message says (no reporter, phone or resident: not selected)."""

    id: int
    channel: str
    alert_key: str
    attempts: int  # including this one
    token: str  # the lease: only this claim may mark the row
    alert_id: int
    kind: str
    hazard_code: str | None
    alert_created_at: dt.datetime
    incident_id: int
    code: str
    category: str
    subcategory: str | None
    severity: int
    town_code: str
    zone_code: str
    grid_code: str
    reported_at: dt.datetime


def _due(channels, now):
    return (OutboxRow.state == "pending", OutboxRow.channel.in_(list(channels)), OutboxRow.next_attempt_at <= now,
            or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now))


def claim(session: Session, channels, *, owner: str, now: dt.datetime | None = None, lease_s: float = 60.0,
          limit: int = 10) -> list[Claimed]:
    """Lease up to ``limit`` due rows of ``channels`` (oldest due first) for ``lease_s`` seconds and count the
    attempt. Rows another dispatcher holds are skipped, never waited for or taken. Commits."""
    channels = tuple(channels)
    if not channels or limit < 1:
        return []
    now = now or utcnow()
    token = f"{owner[:48]}:{uuid.uuid4().hex[:12]}"
    stamp = dict(lease_owner=token, lease_until=now + dt.timedelta(seconds=lease_s), attempts=OutboxRow.attempts + 1)
    order = (OutboxRow.next_attempt_at, OutboxRow.id)
    try:
        if session.get_bind().dialect.name == "postgresql":
            ids = list(session.execute(select(OutboxRow.id).where(*_due(channels, now)).order_by(*order)
                                       .limit(limit).with_for_update(skip_locked=True)).scalars())
            if ids:
                session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(**stamp)
                                .execution_options(synchronize_session=False))
        else:  # SQLite: the UPDATE is the transaction's first statement and takes the single writer lock
            due = select(OutboxRow.id).where(*_due(channels, now)).order_by(*order).limit(limit)
            session.execute(update(OutboxRow).where(OutboxRow.id.in_(due), *_due(channels, now)).values(**stamp)
                            .execution_options(synchronize_session=False))
        rows = session.execute(
            select(OutboxRow.id, OutboxRow.channel, OutboxRow.alert_key, OutboxRow.attempts, Alert.id, Alert.kind,
                   Alert.hazard_code, Alert.created_at, Incident.id, Incident.code, Incident.category,
                   Incident.subcategory, Incident.severity, Incident.town_code, Incident.zone_code, Incident.grid_code,
                   Incident.reported_at)
            .join(Alert, Alert.id == OutboxRow.alert_id).join(Incident, Incident.id == Alert.incident_id)
            .where(OutboxRow.lease_owner == token).order_by(*order)).all()
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [Claimed(r[0], r[1], r[2], r[3], token, *r[4:]) for r in rows]


def _finish(session: Session, row_id: int, token: str, values: dict) -> bool:
    try:
        n = session.execute(update(OutboxRow).where(OutboxRow.id == row_id, OutboxRow.lease_owner == token,
                                                    OutboxRow.state == "pending").values(**values)
                            .execution_options(synchronize_session=False)).rowcount
        session.commit()
        return n == 1
    except BaseException:
        session.rollback()
        raise


def mark_sent(session: Session, row_id: int, token: str, *, now: dt.datetime | None = None) -> bool:
    """The channel took the message. False when the lease was lost (another dispatcher holds the row now)."""
    return _finish(session, row_id, token, dict(state="sent", sent_at=now or utcnow(), lease_until=None))


def mark_failed(session: Session, row_id: int, token: str, *, error: str, retry_at: dt.datetime | None) -> bool:
    """The attempt failed: try again at ``retry_at``, or (``None``) give up: ``dead``. False when the lease was
    lost."""
    values = dict(lease_until=None, last_error=(error or "?")[:ERROR_MAX])
    values.update(dict(state="dead") if retry_at is None else dict(next_attempt_at=retry_at))
    return _finish(session, row_id, token, values)


def release(session: Session, row_id: int, token: str) -> bool:
    """Hand a claimed row back unsent (the dispatcher is stopping): due at once for the next one, the attempt not
    counted."""
    return _finish(session, row_id, token, dict(lease_until=None, attempts=OutboxRow.attempts - 1))


def requeue(session: Session, row_id: int, *, now: dt.datetime | None = None,
            audit: dict | None = None) -> tuple["OutboxView", bool]:
    """Put a ``dead`` row back (attempts from zero, due now). Returns ``(row, changed)``: a row that is not dead is
    left as it is (``changed`` False). Raises :class:`OutboxRowNotFound`. Commits, with the ``audit`` entry (who
    and from where) in the same transaction when it changed something."""
    now = now or utcnow()
    try:
        n = session.execute(update(OutboxRow).where(OutboxRow.id == row_id, OutboxRow.state == "dead").values(
            state="pending", attempts=0, next_attempt_at=now, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)).rowcount
        found = _views(session, select_views().where(OutboxRow.id == row_id))
        if not found:
            raise OutboxRowNotFound(row_id)
        if n and audit is not None:
            from . import audit as audit_log

            audit_log.add(session, at=now, target=found[0].alert_key,
                          **{**audit, "detail": {**(audit.get("detail") or {}), "row": row_id,
                                                 "channel": found[0].channel}})
        session.commit()
        return found[0], bool(n)
    except BaseException:
        session.rollback()
        raise


# ----------------------------------------------------------------------------------------------- read
@dataclass(frozen=True)
class OutboxView:
    id: int
    alert_id: int
    alert_key: str
    incident_id: int
    incident_code: str
    channel: str
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    lease_until: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None

    def leased(self, now: dt.datetime) -> bool:
        """Being sent right now (a dispatcher holds a live lease)."""
        return self.state == "pending" and self.lease_until is not None and self.lease_until > now


def select_views():
    return (select(OutboxRow.id, OutboxRow.alert_id, OutboxRow.alert_key, Incident.id, Incident.code,
                   OutboxRow.channel, OutboxRow.state, OutboxRow.attempts, OutboxRow.next_attempt_at,
                   OutboxRow.lease_until, OutboxRow.last_error, OutboxRow.created_at, OutboxRow.sent_at)
            .join(Alert, Alert.id == OutboxRow.alert_id).join(Incident, Incident.id == Alert.incident_id))


def _views(session: Session, stmt) -> list[OutboxView]:
    return [OutboxView(*r) for r in session.execute(stmt).all()]


def listing(session: Session, *, state: str | None = None, channel: str | None = None, limit: int = 100,
            before_id: int | None = None) -> list[OutboxView]:
    """Newest rows first; ``before_id`` pages back. Ends the read transaction."""
    stmt = select_views()
    if state is not None:
        stmt = stmt.where(OutboxRow.state == state)
    if channel is not None:
        stmt = stmt.where(OutboxRow.channel == channel)
    if before_id is not None:
        stmt = stmt.where(OutboxRow.id < before_id)
    out = _views(session, stmt.order_by(OutboxRow.id.desc()).limit(limit))
    session.rollback()
    return out


def get(session: Session, row_id: int) -> OutboxView | None:
    found = _views(session, select_views().where(OutboxRow.id == row_id))
    session.rollback()
    return found[0] if found else None


def counts(session: Session) -> dict[tuple[str, str], int]:
    """``{(channel, state): rows}``."""
    out = {(ch, st): int(n) for ch, st, n in session.execute(
        select(OutboxRow.channel, OutboxRow.state, func.count()).group_by(OutboxRow.channel, OutboxRow.state)).all()}
    session.rollback()
    return out
