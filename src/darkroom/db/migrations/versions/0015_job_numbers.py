"""job numbers: each organization numbers its jobs 1, 2, 3…; previews take none

A job's id stays its handle (URLs, the API, the CLI); its number is what pages call it, counted
per organization without the previews (findings B8: a preview took the next job number, and
another organization's jobs did too). `organizations.jobs_numbered` is the last one given.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The jobs that are not previews (a preview's target is a scratch version, `preview_of_id`
# set), numbered in the order they were made within their organization.
NUMBERED = """
    SELECT j.id AS id,
           ROW_NUMBER() OVER (PARTITION BY j.organization_id ORDER BY j.id) AS n
    FROM jobs j LEFT JOIN dataset_versions v ON v.id = j.target_version_id
    WHERE v.preview_of_id IS NULL
"""


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), nullable=True))
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(
            sa.Column("jobs_numbered", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        f"UPDATE jobs SET number = (SELECT n FROM ({NUMBERED}) numbered "
        "WHERE numbered.id = jobs.id)"
    )
    op.execute(
        "UPDATE organizations SET jobs_numbered = COALESCE((SELECT MAX(number) FROM jobs "
        "WHERE jobs.organization_id = organizations.id), 0)"
    )
    op.create_index(
        "ix_jobs_organization_id_number", "jobs", ["organization_id", "number"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_organization_id_number", table_name="jobs")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("jobs_numbered")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("number")
