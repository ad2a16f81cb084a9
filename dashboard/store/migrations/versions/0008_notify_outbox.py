"""the notification outbox (``notify_outbox``): one row per (alert, channel), written with the alert

A group-robot message (DingTalk, WeCom, a JSON webhook) for each alert is a row here, inserted in the transaction
that raises the alert; dispatchers claim due rows under a lease, post them and mark them ``sent``, retry with
back-off, or give up (``dead``, an admin may requeue). Unique (channel, alert_key): nothing is queued twice.

Revision ID: 0008_notify_outbox
Revises: 0007_sessions_audit
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from dashboard.store.models import UTCDateTime

revision = "0008_notify_outbox"
down_revision = "0007_sessions_audit"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("alert_key", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(48), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'sent', 'dead')", name="ck_notify_outbox_state"),
        sa.CheckConstraint("attempts >= 0", name="ck_notify_outbox_attempts"),
        sa.UniqueConstraint("channel", "alert_key", name="uq_notify_outbox_channel_alert"),
    )
    op.create_index("ix_notify_outbox_due", "notify_outbox", ["state", "next_attempt_at"])
    op.create_index("ix_notify_outbox_alert_id", "notify_outbox", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_notify_outbox_alert_id", table_name="notify_outbox")
    op.drop_index("ix_notify_outbox_due", table_name="notify_outbox")
    op.drop_table("notify_outbox")
