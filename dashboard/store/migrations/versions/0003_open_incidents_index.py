"""partial index over open incidents (status <> 'closed')

The map, the live counts and the duty list read the open cases: a few thousand rows among hundreds of thousands
closed ones. SQLite's planner, given ANALYZE statistics, scans the whole table for ``status IN (<8 open states>)``;
a partial index that the query names exactly (``status <> 'closed'``) keeps those reads at index speed on SQLite
and PostgreSQL alike.

Revision ID: 0003_open_incidents_index
Revises: 0002_users_alerts
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_open_incidents_index"
down_revision = "0002_users_alerts"
branch_labels = None
depends_on = None

OPEN = sa.text("status <> 'closed'")


def upgrade() -> None:
    op.create_index("ix_incidents_open", "incidents", ["zone_code", "grid_code", "town_code", "due_at"],
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index("ix_incidents_open", table_name="incidents")
