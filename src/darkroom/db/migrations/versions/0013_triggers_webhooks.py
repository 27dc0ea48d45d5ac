"""triggers (what starts pipelines and processings by itself) and webhooks with their deliveries

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("pipeline_id", ID, nullable=True),
        sa.Column("processing_id", ID, nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("model_version_id", ID, nullable=True),
        sa.Column("version_id", ID, nullable=True),
        sa.Column("dataset_id", ID, nullable=True),
        sa.Column("min_assets", sa.Integer(), nullable=False),
        sa.Column("debounce_s", sa.Float(), nullable=False),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("cursor", ID, nullable=False),
        sa.Column("next_fire_at", TS, nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("fired", sa.Integer(), nullable=False),
        sa.Column("last_fired_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name="fk_triggers_organization_id_organizations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"],
                                name="fk_triggers_pipeline_id_pipelines", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["processing_id"], ["processings.id"],
                                name="fk_triggers_processing_id_processings", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_versions.id"],
                                name="fk_triggers_version_id_dataset_versions", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"],
                                name="fk_triggers_dataset_id_datasets", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_triggers"),
        sa.UniqueConstraint("organization_id", "name", name="uq_triggers_organization_id_name"),
    )  # fmt: skip
    op.create_index("ix_triggers_organization_id", "triggers", ["organization_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name="fk_webhooks_organization_id_organizations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )  # fmt: skip
    op.create_index("ix_webhooks_organization_id", "webhooks", ["organization_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("webhook_id", ID, nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"],
                                name="fk_webhook_deliveries_webhook_id_webhooks", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )  # fmt: skip
    op.create_index("ix_webhook_deliveries_status_next_attempt_at", "webhook_deliveries",
                    ["status", "next_attempt_at"])  # fmt: skip
    op.create_index("ix_webhook_deliveries_webhook_id_id", "webhook_deliveries",
                    ["webhook_id", "id"])  # fmt: skip
    for table in ("jobs", "pipeline_runs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("trigger_id", ID, nullable=True))
            batch.create_foreign_key(f"fk_{table}_trigger_id_triggers", "triggers",
                                     ["trigger_id"], ["id"], ondelete="SET NULL")  # fmt: skip
            batch.create_index(f"ix_{table}_trigger_id", ["trigger_id"])


def downgrade() -> None:
    for table in ("pipeline_runs", "jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_trigger_id")
            batch.drop_constraint(f"fk_{table}_trigger_id_triggers", type_="foreignkey")
            batch.drop_column("trigger_id")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("triggers")
