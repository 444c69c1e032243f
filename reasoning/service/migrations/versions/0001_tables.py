"""The metadata store's tables: jobs, the dataset and model catalogs, keys and tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("sealed", sa.Text),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("progress_done", sa.Integer, nullable=False),
        sa.Column("progress_total", sa.Integer, nullable=False),
        sa.Column("model_id", sa.String(64)),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("started_at", sa.String(40)),
        sa.Column("finished_at", sa.String(40)),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("jobs_idempotency", "jobs", ["tenant", "idempotency_key"], unique=True)
    op.create_index("jobs_open", "jobs", ["status", "created_at"])
    op.create_index("jobs_tenant", "jobs", ["tenant", "created_at"])
    for table, key, body in (("datasets", "dataset_id", "info"), ("models", "model_id", "card")):
        op.create_table(
            table,
            sa.Column(key, sa.String(36), primary_key=True),
            sa.Column("tenant", sa.String(64), nullable=False),
            sa.Column("created_at", sa.String(40), nullable=False),
            sa.Column(body, sa.Text, nullable=False),
        )
        op.create_index(f"{table}_tenant", table, ["tenant", "created_at"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("family_id", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float),
        sa.Column("revoked", sa.Integer, nullable=False),
    )
    op.create_index("refresh_family", "refresh_tokens", ["family_id"])


def downgrade() -> None:
    for table in ("refresh_tokens", "api_keys", "models", "datasets", "jobs"):
        op.drop_table(table)
