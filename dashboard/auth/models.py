"""The ``users`` table: people who sign in to the dashboard (值班员 duty officers, 领导 leaders, admins) and
their role. Passwords are stored only as werkzeug hashes (scrypt)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, BigId, UTCDateTime

# role -> (zh, en). wall: the kiosk display (read-only, no personal data); leader: read; duty_officer: read and
# act on incidents and alerts; admin: everything a duty officer may, plus user management through the CLI.
ROLES: dict[str, tuple[str, str]] = {
    "wall": ("大屏", "wall display"),
    "leader": ("领导", "leader"),
    "duty_officer": ("值班员", "duty officer"),
    "admin": ("管理员", "administrator"),
}


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
        CheckConstraint("role IN ('wall', 'leader', 'duty_officer', 'admin')", name="ck_users_role"),
        Index("ix_users_username", "username", unique=True),
    )

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def name(self) -> str:
        return self.display_name or self.username
