"""processings jobs runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:46:50.907451
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("needs_model", sa.Boolean(), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_processings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processings")),
        sa.UniqueConstraint(
            "organization_id", "name", name=op.f("uq_processings_organization_id_name")
        ),
    )
    with op.batch_alter_table("processings", schema=None) as batch_op:
        batch_op.create_index(
            "uq_processings_builtin_name",
            ["name"],
            unique=True,
            sqlite_where=sa.text("organization_id IS NULL"),
            postgresql_where=sa.text("organization_id IS NULL"),
        )

    op.create_table(
        "processing_revisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "processing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("parameters_schema", sa.JSON(), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["processing_id"],
            ["processings.id"],
            name=op.f("fk_processing_revisions_processing_id_processings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_revisions")),
        sa.UniqueConstraint(
            "processing_id", "number", name=op.f("uq_processing_revisions_processing_id_number")
        ),
    )
    with op.batch_alter_table("processing_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_revisions_processing_id"), ["processing_id"], unique=False
        )

    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "processing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "target_version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "model_version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_jobs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["processing_id"],
            ["processings.id"],
            name=op.f("fk_jobs_processing_id_processings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_jobs_target_version_id_dataset_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_organization_id_id", ["organization_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_processing_id"), ["processing_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_jobs_target_version_id"), ["target_version_id"], unique=False
        )

    op.create_table(
        "runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "revision_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.String(length=20), nullable=True),
        sa.Column("error_summary", sa.Text(), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_runs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["processing_revisions.id"],
            name=op.f("fk_runs_revision_id_processing_revisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("job_id", "attempt", name=op.f("uq_runs_job_id_attempt")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_status_queued_at", ["status", "queued_at"], unique=False)
        batch_op.create_index(
            "uq_runs_one_active_per_job",
            ["job_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'running')"),
            postgresql_where=sa.text("status IN ('pending', 'running')"),
        )

    op.create_table(
        "log_lines",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_log_lines_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_log_lines")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_api_tokens_run_id"), ["run_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_run_id_runs"), "runs", ["run_id"], ["id"], ondelete="CASCADE"
        )

    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_dataset_versions_produced_by_job_id_jobs"),
            "jobs",
            ["produced_by_job_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_dataset_versions_produced_by_job_id_jobs"), type_="foreignkey"
        )

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_tokens_run_id_runs"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_tokens_run_id"))
        batch_op.drop_column("run_id")

    op.drop_table("log_lines")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_runs_one_active_per_job",
            sqlite_where=sa.text("status IN ('pending', 'running')"),
            postgresql_where=sa.text("status IN ('pending', 'running')"),
        )
        batch_op.drop_index("ix_runs_status_queued_at")

    op.drop_table("runs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_target_version_id"))
        batch_op.drop_index(batch_op.f("ix_jobs_processing_id"))
        batch_op.drop_index("ix_jobs_organization_id_id")

    op.drop_table("jobs")
    with op.batch_alter_table("processing_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_revisions_processing_id"))

    op.drop_table("processing_revisions")
    with op.batch_alter_table("processings", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_processings_builtin_name",
            sqlite_where=sa.text("organization_id IS NULL"),
            postgresql_where=sa.text("organization_id IS NULL"),
        )

    op.drop_table("processings")
