"""The audit log (审计日志): who did what, when, from where — append-only.

Every lifecycle step, alert acknowledgement, requeued alert push, export, sign-in, sign-out and lockout, and every change of a user or of
the configured tokens is one row. The app only inserts and reads: this module has no update or delete, and the
migration that creates the table puts triggers on it that refuse UPDATE and DELETE on both SQLite and PostgreSQL,
so not even a bug can rewrite history. A write that changes data records its row in the same transaction.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Index, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base, BigId, UTCDateTime

ACTIONS = {  # action -> (zh, en)
    "sign_in": ("登录", "sign-in"), "sign_in_failed": ("登录失败", "failed sign-in"),
    "locked": ("账号锁定", "account locked"), "sign_out": ("退出", "sign-out"),
    "kiosk_session": ("大屏会话", "kiosk session"), "transition": ("处置流转", "lifecycle step"),
    "alert_ack": ("告警确认", "alert acknowledged"), "export": ("导出", "export"),
    "audit_export": ("导出审计日志", "audit log export"), "user_add": ("新增用户", "user added"),
    "user_change": ("修改用户", "user changed"), "user_logout": ("强制下线", "sessions ended"),
    "tokens_changed": ("令牌变更", "tokens changed"),
    "notify_requeue": ("推送重新排队", "alert push requeued"),
}


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))  # user name, "token:<mark>", "kiosk", "cli:<os user>", "system"
    role: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(64), nullable=True)  # incident code, user name, alert id …
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON

    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_action_at", "action", "at"))

    @property
    def details(self) -> dict:
        try:
            return json.loads(self.detail) if self.detail else {}
        except ValueError:
            return {}


@dataclass
class AuditFilter:
    actions: list[str] | None = None
    actor: str | None = None  # substring
    target: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def conditions(self) -> list:
        out = []
        if self.actions:
            out.append(AuditEntry.action.in_(self.actions))
        if self.actor:
            out.append(AuditEntry.actor.contains(self.actor, autoescape=True))
        if self.target:
            out.append(AuditEntry.target == self.target)
        if self.since is not None:
            out.append(AuditEntry.at >= self.since)
        if self.until is not None:
            out.append(AuditEntry.at < self.until)
        return out


def add(session: Session, *, at: dt.datetime, actor: str, role: str, action: str, address: str | None = None,
        target: str | None = None, detail: dict | None = None) -> AuditEntry:
    """Put an entry into ``session`` (the caller commits: with the change it records, when there is one)."""
    entry = AuditEntry(at=at, actor=(actor or "?")[:64], role=(role or "?")[:16], address=(address or "")[:64] or None,
                       action=action[:32], target=(str(target)[:64] if target is not None else None),
                       detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None)
    session.add(entry)
    return entry


def record(session: Session, **kw) -> AuditEntry:
    """:func:`add` and commit (for events that change nothing else: sign-in, export …)."""
    entry = add(session, **kw)
    session.commit()
    return entry


def entries(session: Session, flt: AuditFilter, *, limit: int, before_id: int | None = None) -> list[AuditEntry]:
    """Newest first; ``before_id`` pages back."""
    stmt = select(AuditEntry).where(*flt.conditions())
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    rows = list(session.execute(stmt.order_by(AuditEntry.id.desc()).limit(limit)).scalars())
    return _detached(session, rows)


def _detached(session: Session, rows: list) -> list:
    """The rows, loaded and detached, with the read transaction ended (read-only values for the caller)."""
    for r in rows:
        session.expunge(r)
    session.rollback()
    return rows


def count(session: Session, flt: AuditFilter) -> int:
    n = session.execute(select(func.count()).select_from(AuditEntry).where(*flt.conditions())).scalar_one()
    session.rollback()
    return int(n)


def last_of(session: Session, action: str) -> AuditEntry | None:
    row = session.execute(select(AuditEntry).where(AuditEntry.action == action)
                          .order_by(AuditEntry.id.desc()).limit(1)).scalar_one_or_none()
    found = _detached(session, [row] if row is not None else [])
    return found[0] if found else None
