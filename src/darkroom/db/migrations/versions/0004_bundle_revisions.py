"""bundle revisions: development flag and the bundle's blob

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processing_revisions") as batch:
        batch.add_column(
            sa.Column("is_dev", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("bundle_sha256", sa.String(length=64), nullable=True))
        batch.create_index(
            batch.f("ix_processing_revisions_bundle_sha256"), ["bundle_sha256"], unique=False
        )
        batch.create_foreign_key(
            batch.f("fk_processing_revisions_bundle_sha256_blobs"),
            "blobs",
            ["bundle_sha256"],
            ["sha256"],
        )


def downgrade() -> None:
    with op.batch_alter_table("processing_revisions") as batch:
        batch.drop_constraint(
            batch.f("fk_processing_revisions_bundle_sha256_blobs"), type_="foreignkey"
        )
        batch.drop_index(batch.f("ix_processing_revisions_bundle_sha256"))
        batch.drop_column("bundle_sha256")
        batch.drop_column("is_dev")
