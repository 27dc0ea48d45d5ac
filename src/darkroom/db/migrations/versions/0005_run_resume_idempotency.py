"""runs: resume flag, finished assets, idempotent writes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("resume", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "finished_assets",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("asset_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_finished_assets_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_finished_assets_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "asset_id", name=op.f("pk_finished_assets")),
    )
    op.create_index(op.f("ix_finished_assets_asset_id"), "finished_assets", ["asset_id"])
    op.create_table(
        "run_requests",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_requests_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_requests")),
    )


def downgrade() -> None:
    op.drop_table("run_requests")
    op.drop_index(op.f("ix_finished_assets_asset_id"), table_name="finished_assets")
    op.drop_table("finished_assets")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("resume")
