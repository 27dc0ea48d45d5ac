"""runs: the parameters each run ran with (a re-run may change them)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parameters", sa.JSON(), nullable=True))
    # Earlier runs ran with their job's parameters as they stand (a re-run that changed them
    # left no trace of the old ones).
    op.execute(
        "UPDATE runs SET parameters = (SELECT jobs.parameters FROM jobs WHERE jobs.id = runs.job_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("parameters")
