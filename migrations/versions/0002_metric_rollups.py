"""metric rollups: per series, the extremes of every 100 consecutive steps

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLLUP_STEPS = 100


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_metric_rollups_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "name", "bucket", name=op.f("pk_metric_rollups")),
    )
    # Roll up the points already stored.
    op.execute(
        "INSERT INTO metric_rollups (job_id, name, bucket, points, min_value, max_value, last_step) "
        f"SELECT job_id, name, (step - 1) / {ROLLUP_STEPS}, count(*), min(value), max(value), "
        f"max(step) FROM metric_points GROUP BY job_id, name, (step - 1) / {ROLLUP_STEPS}"
    )


def downgrade() -> None:
    op.drop_table("metric_rollups")
