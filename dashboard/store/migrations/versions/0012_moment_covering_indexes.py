"""the moment counts of a past period read from an index alone (PostgreSQL): ``ix_incidents_close_lag`` carries the
columns :func:`dashboard.store.aggregates._moment_stmt` counts (INCLUDE)

A period's bundle counts, per unit, the incidents open at its end, the unresolved, overdue and late ones
(``_moment_stmt``): the open cases through their partial index (a few thousand, the newest rows of the table),
and for a past end the cases closed after it through ``ix_incidents_close_lag``, one range of that index per
close-lag class. That index held only its keys, so each case found was then read from the table: on a 10M store a
past period's first pass read thousands of table pages scattered over the history (100–230 ms of a bundle waiting
on the server). With the counted columns included, the ranges are read from the index alone (PostgreSQL's
index-only scan; the visibility map is set by COPY FREEZE at generation and by VACUUM afterwards). SQLite has no
INCLUDE and reads these rows from stores a hundred times smaller: unchanged there.

Revision ID: 0012_moment_covering_indexes
Revises: 0011_open_incidents_place_index
Create Date: 2026-12-03
"""
from alembic import op

revision = "0012_moment_covering_indexes"
down_revision = "0011_open_incidents_place_index"
branch_labels = None
depends_on = None

COUNTED = ["reported_at", "due_at", "grid_code", "zone_code", "town_code"]


def _replace(include: list[str]) -> None:
    op.drop_index("ix_incidents_close_lag", table_name="incidents")
    op.create_index("ix_incidents_close_lag", "incidents", ["close_lag", "closed_at"], postgresql_include=include)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("SET LOCAL maintenance_work_mem = '1GB'")
    _replace(COUNTED)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _replace([])
