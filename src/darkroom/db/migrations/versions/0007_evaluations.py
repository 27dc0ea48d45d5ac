"""evaluations: a model version's metrics on a dataset version

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("model_version_id", ID, nullable=False),
        sa.Column("dataset_version_id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_evaluations_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_evaluations_dataset_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_evaluations_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_evaluations_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_index(op.f("ix_evaluations_model_version_id"), "evaluations", ["model_version_id"])
    op.create_index(
        op.f("ix_evaluations_dataset_version_id"), "evaluations", ["dataset_version_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_evaluations_dataset_version_id"), table_name="evaluations")
    op.drop_index(op.f("ix_evaluations_model_version_id"), table_name="evaluations")
    op.drop_table("evaluations")
