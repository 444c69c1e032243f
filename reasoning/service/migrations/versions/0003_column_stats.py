"""Each dataset's column statistics, computed once at upload, for submit-time checks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: datasets stored before it have none, and are summarised from their file.
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("stats", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("stats")
