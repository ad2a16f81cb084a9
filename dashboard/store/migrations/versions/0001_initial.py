"""initial: incidents, incident_events, inspections, hazard_sites, change sequence

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

from dashboard.store.models import UTCDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("zone_code", sa.String(32), nullable=False),
        sa.Column("town_code", sa.String(32), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("inspector", sa.String(64), nullable=False),
        sa.Column("problems_found", sa.Integer(), nullable=False),
        sa.CheckConstraint("problems_found >= 0", name="ck_inspections_problems_nonneg"),
    )
    op.create_index("ix_inspections_inspected_on", "inspections", ["inspected_on"])
    op.create_index("ix_inspections_grid_code", "inspections", ["grid_code"])
    op.create_index("ix_inspections_zone_code", "inspections", ["zone_code"])
    op.create_index("ix_inspections_town_code", "inspections", ["town_code"])
    op.create_index("ix_inspections_unit_id", "inspections", ["unit_id"])

    op.create_table(
        "incidents",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("client_ref", sa.String(64), nullable=True, unique=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("subcategory", sa.String(64), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("zone_code", sa.String(32), nullable=False),
        sa.Column("town_code", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("reporter", sa.String(64), nullable=False),
        sa.Column("reporter_phone", sa.String(32), nullable=True),
        sa.Column("inspection_id", BigId, sa.ForeignKey("inspections.id", ondelete="SET NULL"), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("longstanding", sa.Boolean(), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("severity BETWEEN 1 AND 4", name="ck_incidents_severity"),
    )
    op.create_index("ix_incidents_reported_at", "incidents", ["reported_at"])
    op.create_index("ix_incidents_status_reported_at", "incidents", ["status", "reported_at"])
    op.create_index("ix_incidents_grid_code", "incidents", ["grid_code"])
    op.create_index("ix_incidents_zone_code", "incidents", ["zone_code"])
    op.create_index("ix_incidents_town_code", "incidents", ["town_code"])
    op.create_index("ix_incidents_category", "incidents", ["category"])
    op.create_index("ix_incidents_seq", "incidents", ["seq"], unique=True)

    op.create_table(
        "incident_events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=True),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("department", sa.String(32), nullable=True),
    )
    op.create_index("ix_incident_events_incident_id_seq", "incident_events", ["incident_id", "seq"])
    op.create_index("ix_incident_events_at", "incident_events", ["at"])
    op.create_index("ix_incident_events_to_status_at", "incident_events", ["to_status", "at"])

    op.create_table(
        "hazard_sites",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("risk", sa.Integer(), nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("ring_m", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("zone_code", sa.String(32), nullable=False),
        sa.Column("town_code", sa.String(32), nullable=False),
    )
    op.create_index("ix_hazard_sites_grid_code", "hazard_sites", ["grid_code"])
    op.create_index("ix_hazard_sites_kind", "hazard_sites", ["kind"])

    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE change_seq AS bigint START WITH 1 INCREMENT BY 1")
    else:
        op.execute("INSERT INTO change_counter (id, value) VALUES (1, 0)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS change_seq")
    for name in ("change_counter", "hazard_sites", "incident_events", "incidents", "inspections"):
        op.drop_table(name)
