"""a year grain in the aggregates: rows of grain ``y`` (``day`` = 1 January of the local year) beside the day and
month rows, made here from the month rows of a store built before them

A period is read as whole years, the whole months at their edges and the edge days (``aggregates.DaySpan``): a
multi-year period reads one row per unit and year instead of twelve (at a million incidents three years of month
histograms of every district / town / zone are about 15 MB of packed bins). From now on ``apply_change`` keeps the
year rows in the write's transaction and ``aggregates rebuild`` writes them (both through ``contributions``); here
the existing month rows are summed, merged and OR-ed per year (``aggregates.backfill_years``): the same rows a
rebuild would write, without reading the incidents again.

Revision ID: 0010_agg_year_grain
Revises: 0009_agg_hist_level_index
Create Date: 2026-12-02
"""
from alembic import op

revision = "0010_agg_year_grain"
down_revision = "0009_agg_hist_level_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from dashboard.store import aggregates

    aggregates.backfill_years(op.get_bind())


def downgrade() -> None:
    for table in ("agg_counts", "agg_category", "agg_dept", "agg_hist", "agg_units"):
        op.execute(f"DELETE FROM {table} WHERE grain = 'y'")
