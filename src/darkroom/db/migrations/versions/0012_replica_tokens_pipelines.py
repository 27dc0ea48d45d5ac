"""replica tokens (what a Ray Serve replica fetches its weights with); pipelines and their runs

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(16), nullable=True))
    op.create_table(
        "pipelines",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name="fk_pipelines_organization_id_organizations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        sa.UniqueConstraint("organization_id", "name", name="uq_pipelines_organization_id_name"),
    )  # fmt: skip
    op.create_index("ix_pipelines_organization_id", "pipelines", ["organization_id"])
    op.create_table(
        "pipeline_revisions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"],
                                name="fk_pipeline_revisions_pipeline_id_pipelines", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_revisions"),
        sa.UniqueConstraint("pipeline_id", "number", name="uq_pipeline_revisions_pipeline_id_number"),
    )  # fmt: skip
    op.create_index("ix_pipeline_revisions_pipeline_id", "pipeline_revisions", ["pipeline_id"])
    op.create_table(
        "pipeline_runs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("revision_id", ID, nullable=False),
        sa.Column("input_version_id", ID, nullable=True),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("cancelled_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name="fk_pipeline_runs_organization_id_organizations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"],
                                name="fk_pipeline_runs_pipeline_id_pipelines", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["revision_id"], ["pipeline_revisions.id"],
                                name="fk_pipeline_runs_revision_id_pipeline_revisions"),
        sa.ForeignKeyConstraint(["input_version_id"], ["dataset_versions.id"],
                                name="fk_pipeline_runs_input_version_id_dataset_versions",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
    )  # fmt: skip
    op.create_index("ix_pipeline_runs_pipeline_id", "pipeline_runs", ["pipeline_id"])
    op.create_index(
        "ix_pipeline_runs_organization_id_id", "pipeline_runs", ["organization_id", "id"]
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pipeline_run_id", ID, nullable=True))
        batch.add_column(sa.Column("pipeline_step", sa.String(100), nullable=True))
        batch.create_foreign_key("fk_jobs_pipeline_run_id_pipeline_runs", "pipeline_runs",
                                 ["pipeline_run_id"], ["id"], ondelete="SET NULL")  # fmt: skip
        batch.create_index("ix_jobs_pipeline_run_id", ["pipeline_run_id"])
        batch.create_unique_constraint("uq_jobs_pipeline_run_id_pipeline_step",
                                       ["pipeline_run_id", "pipeline_step"])  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_pipeline_run_id_pipeline_step", type_="unique")
        batch.drop_index("ix_jobs_pipeline_run_id")
        batch.drop_constraint("fk_jobs_pipeline_run_id_pipeline_runs", type_="foreignkey")
        batch.drop_column("pipeline_step")
        batch.drop_column("pipeline_run_id")
    op.drop_table("pipeline_runs")
    op.drop_table("pipeline_revisions")
    op.drop_table("pipelines")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
