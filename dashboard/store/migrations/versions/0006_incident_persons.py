"""residents named in an incident (personal data): ``incidents.persons``

The API marks the residents a description or address names (``persons``: a JSON list of names); audiences without
personal data (leaders, read tokens, the wall) see them masked. Existing rows have none (NULL).

Revision ID: 0006_incident_persons
Revises: 0005_aggregates
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_incident_persons"
down_revision = "0005_aggregates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("persons", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("persons")
