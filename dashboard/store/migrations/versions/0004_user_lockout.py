"""sign-in lockout: consecutive failed sign-ins per user and the time a lock ends

After ``LOGIN_MAX_FAILURES`` wrong passwords in a row an account is locked for ``LOGIN_LOCK_MINUTES`` (the
等保 "登录失败处理" requirement); a correct sign-in, ``users unlock`` or ``users passwd`` clears it.

Revision ID: 0004_user_lockout
Revises: 0003_open_incidents_index
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from dashboard.store.models import UTCDateTime

revision = "0004_user_lockout"
down_revision = "0003_open_incidents_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
