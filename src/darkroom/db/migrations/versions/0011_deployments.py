"""deployments: served model versions, their revisions, predictions and run metrics

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("revision_id", ID, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name="fk_deployments_organization_id_organizations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.UniqueConstraint("organization_id", "name", name="uq_deployments_organization_id_name"),
    )  # fmt: skip
    op.create_index("ix_deployments_organization_id", "deployments", ["organization_id"])
    op.create_table(
        "deployment_revisions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("model_version_id", ID, nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"],
                                name="fk_deployment_revisions_deployment_id_deployments", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"],
                                name="fk_deployment_revisions_model_version_id_model_versions"),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_revisions"),
        sa.UniqueConstraint("deployment_id", "number", name="uq_deployment_revisions_deployment_id_number"),
    )  # fmt: skip
    op.create_index(
        "ix_deployment_revisions_deployment_id", "deployment_revisions", ["deployment_id"]
    )
    op.create_index(
        "ix_deployment_revisions_model_version_id", "deployment_revisions", ["model_version_id"]
    )
    with op.batch_alter_table("deployments") as batch:
        batch.create_foreign_key("fk_deployments_revision_id_deployment_revisions",
                                 "deployment_revisions", ["revision_id"], ["id"])  # fmt: skip
    op.create_table(
        "predictions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("model_version_id", ID, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("queue_ms", sa.Float(), nullable=False),
        sa.Column("inference_ms", sa.Float(), nullable=False),
        sa.Column("total_ms", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("shapes", sa.JSON(), nullable=False),
        sa.Column("labels", sa.String(2000), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("image_sha256", sa.String(64), nullable=True),
        sa.Column("review_status", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"],
                                name="fk_predictions_deployment_id_deployments", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_sha256"], ["blobs.sha256"], name="fk_predictions_image_sha256_blobs"),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )  # fmt: skip
    op.create_index("ix_predictions_deployment_id_id", "predictions", ["deployment_id", "id"])
    op.create_index(
        "ix_predictions_deployment_id_created_at", "predictions", ["deployment_id", "created_at"]
    )
    op.create_index("ix_predictions_image_sha256", "predictions", ["image_sha256"])
    op.create_table(
        "metrics",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("deployment_id", ID, nullable=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("data", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metrics_run_id_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_metrics_job_id_jobs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"],
                                name="fk_metrics_deployment_id_deployments", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
    )  # fmt: skip
    op.create_index("ix_metrics_run_id", "metrics", ["run_id"])
    op.create_index("ix_metrics_deployment_id_key", "metrics", ["deployment_id", "key"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("deployment_id", ID, nullable=True))
        batch.create_foreign_key("fk_api_tokens_deployment_id_deployments", "deployments",
                                 ["deployment_id"], ["id"], ondelete="CASCADE")  # fmt: skip
        batch.create_index("ix_api_tokens_deployment_id", ["deployment_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("target_deployment_id", ID, nullable=True))
        batch.add_column(sa.Column("window_start", TS, nullable=True))
        batch.add_column(sa.Column("window_end", TS, nullable=True))
        batch.create_foreign_key("fk_jobs_target_deployment_id_deployments", "deployments",
                                 ["target_deployment_id"], ["id"], ondelete="SET NULL")  # fmt: skip
        batch.create_index("ix_jobs_target_deployment_id", ["target_deployment_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_target_deployment_id")
        batch.drop_constraint("fk_jobs_target_deployment_id_deployments", type_="foreignkey")
        batch.drop_column("window_end")
        batch.drop_column("window_start")
        batch.drop_column("target_deployment_id")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_deployment_id")
        batch.drop_constraint("fk_api_tokens_deployment_id_deployments", type_="foreignkey")
        batch.drop_column("deployment_id")
    op.drop_table("metrics")
    op.drop_table("predictions")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_constraint("fk_deployments_revision_id_deployment_revisions", type_="foreignkey")
    op.drop_table("deployment_revisions")
    op.drop_table("deployments")
