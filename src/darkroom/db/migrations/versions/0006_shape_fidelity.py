"""shapes: several rings, masks, keypoints, attributes; labels: external id, keypoint schema

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shapes") as batch:
        for name in ("rings", "mask", "keypoints", "attributes"):
            batch.add_column(sa.Column(name, sa.JSON(), nullable=True))
    with op.batch_alter_table("labels") as batch:
        batch.add_column(sa.Column("external_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("keypoints", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("keypoints")
        batch.drop_column("external_id")
    with op.batch_alter_table("shapes") as batch:
        for name in ("attributes", "keypoints", "mask", "rings"):
            batch.drop_column(name)
