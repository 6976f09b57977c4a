"""projects, API keys and idempotency records; jobs, sweeps and data sets belong to a project

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Every row made before projects existed moves into the `default` project. An uploaded data set
is unique per project (the same file uploaded by two projects is two data sets).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
OWNED = ("jobs", "sweeps", "datasets")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("locked_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_projects")),
    )
    now = sa.func.current_timestamp()
    op.execute(
        sa.table("projects", sa.column("name"), sa.column("created_at"), sa.column("locked_at"))
        .insert()
        .from_select(
            ["name", "created_at", "locked_at"], sa.select(sa.literal("default"), now, now)
        )
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("project", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_index(
        op.f("ix_idempotency_records_created_at"), "idempotency_records", ["created_at"]
    )
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("project", sa.String(64), nullable=False, server_default="default")
            )
            batch.add_column(sa.Column("created_by", sa.String(32), nullable=True))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("project", server_default=None)
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("deleted_at", TIMESTAMP, nullable=True))
    op.create_index("ix_jobs_project_status", "jobs", ["project", "status"])
    op.create_index("ix_sweeps_project_status", "sweeps", ["project", "status"])
    with op.batch_alter_table("datasets") as batch:
        batch.drop_constraint("uq_datasets_sha256", type_="unique")
        batch.create_unique_constraint(
            "uq_datasets_project", ["project", "sha256", "target", "task"]
        )


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_constraint("uq_datasets_project", type_="unique")
        batch.create_unique_constraint("uq_datasets_sha256", ["sha256", "target", "task"])
    op.drop_index("ix_sweeps_project_status", table_name="sweeps")
    op.drop_index("ix_jobs_project_status", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("deleted_at")
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("created_by")
            batch.drop_column("project")
    op.drop_index(op.f("ix_idempotency_records_created_at"), table_name="idempotency_records")
    op.drop_table("idempotency_records")
    op.drop_table("api_keys")
    op.drop_table("projects")
