"""The best trial score of a running job so far, for progress displays.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: no trial has a score before the first one ends (and older jobs have none).
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("progress_best", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("progress_best")
