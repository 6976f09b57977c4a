"""checkpoints: the job's checkpoint pointers, the job a clone came from, its initial weights

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("checkpoint", JSON, nullable=True))
    op.add_column("jobs", sa.Column("source_job_id", sa.String(36), nullable=True))
    op.add_column("jobs", sa.Column("init_from", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("init_from")
        batch.drop_column("source_job_id")
        batch.drop_column("checkpoint")
