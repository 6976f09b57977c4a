"""sweeps, and which jobs are their trials (sweep_trials); the schema of Optuna's tables

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Bayes sweeps keep Optuna's study in Optuna's own tables (studies, trials, ... and its own
`alembic_version`), which Optuna creates and migrates itself: they are not Alembic-managed
here, and must not share a schema with ours (both would claim `alembic_version`). On
PostgreSQL they live in the `optuna` schema of the same database, created here; on SQLite in
a sibling file (`epochal.db` -> `epochal.optuna.db`, see core/sweeps/optuna_sampler.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
OPTUNA_SCHEMA = "optuna"


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("base", JSON, nullable=False),
        sa.Column("run_cap", sa.Integer(), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    op.create_index("ix_sweeps_created_at_id", "sweeps", ["created_at", "id"])
    op.create_index(op.f("ix_sweeps_status"), "sweeps", ["status"])

    op.create_table(
        "sweep_trials",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("sweep_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("told", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_sweep_trials_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweeps.id"],
            name=op.f("fk_sweep_trials_sweep_id_sweeps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_sweep_trials")),
    )
    op.create_index(
        "ix_sweep_trials_sweep_id_number", "sweep_trials", ["sweep_id", "number"], unique=True
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {OPTUNA_SCHEMA} CASCADE")
    # Earlier code knows no `pruned` status: a trial stopped early reads as cancelled there.
    op.execute("UPDATE jobs SET status = 'cancelled' WHERE status = 'pruned'")
    op.drop_index("ix_sweep_trials_sweep_id_number", table_name="sweep_trials")
    op.drop_table("sweep_trials")
    op.drop_index(op.f("ix_sweeps_status"), table_name="sweeps")
    op.drop_index("ix_sweeps_created_at_id", table_name="sweeps")
    op.drop_table("sweeps")
