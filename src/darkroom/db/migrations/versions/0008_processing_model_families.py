"""processings: the model families a processing runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processings") as batch:
        batch.add_column(sa.Column("model_families", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processings") as batch:
        batch.drop_column("model_families")
