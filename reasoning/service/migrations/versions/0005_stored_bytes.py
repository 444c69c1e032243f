"""The size of each stored dataset and model, for per-tenant storage quotas.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: objects stored before it count as nothing toward a quota.
    for table in ("datasets", "models"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("bytes", sa.BigInteger, nullable=True))


def downgrade() -> None:
    for table in ("datasets", "models"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("bytes")
