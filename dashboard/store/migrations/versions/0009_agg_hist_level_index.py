"""histograms read by kind, grain and level: ``ix_agg_hist_kind_grain_lvl_day`` replaces
``ix_agg_hist_kind_grain_day``; planner statistics for the aggregate tables

A KPI bundle reads the close-time and dispute histograms of the district, towns and zones only (grids on demand):
with the level in the index those reads no longer visit the grids' rows of the same days (nine in ten). A store
whose aggregates were built in bulk (a rebuild, the demo generator) had no planner statistics for them until
something analysed them (PostgreSQL's autovacuum, if on; SQLite never): they are analysed here, and by every
rebuild from now on.

Revision ID: 0009_agg_hist_level_index
Revises: 0008_notify_outbox
Create Date: 2026-12-02
"""
from alembic import op

revision = "0009_agg_hist_level_index"
down_revision = "0008_notify_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from dashboard.store import aggregates

    bind = op.get_bind()
    op.execute("DROP INDEX IF EXISTS ix_agg_hist_kind_grain_day")
    for ix in aggregates.AggHours.indexes:  # a fresh store has it already (0005 creates the models' indexes)
        ix.create(bind, checkfirst=True)
    aggregates.analyze(bind)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_agg_hist_kind_grain_lvl_day")
    op.create_index("ix_agg_hist_kind_grain_day", "agg_hist", ["kind", "grain", "day"])
