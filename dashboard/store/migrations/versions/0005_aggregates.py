"""KPI aggregates (agg_counts, agg_category, agg_dept, agg_hist, agg_units, inspection_units) and
``incidents.close_lag`` with its index; built from the existing rows (see dashboard/store/aggregates.py).

Revision ID: 0005_aggregates
Revises: 0004_user_lockout
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_aggregates"
down_revision = "0004_user_lockout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from dashboard.store import aggregates

    bind = op.get_bind()
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("close_lag", sa.SmallInteger(), nullable=True))
    op.create_index("ix_incidents_close_lag", "incidents", ["close_lag", "closed_at"])
    for table in aggregates.AGG_TABLES:
        table.create(bind, checkfirst=True)
        for ix in table.indexes:
            ix.create(bind, checkfirst=True)
    aggregates.rebuild(bind)


def downgrade() -> None:
    from dashboard.store import aggregates

    bind = op.get_bind()
    for table in reversed(aggregates.AGG_TABLES):
        table.drop(bind, checkfirst=True)
    op.drop_index("ix_incidents_close_lag", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("close_lag")
