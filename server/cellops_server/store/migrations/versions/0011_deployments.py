"""Deployments: named endpoints serving model versions, their keys, events, metrics and
request samples; the training reference of a model version, for drift.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("alias", sa.String(64)),
        sa.Column("traffic", JSON, nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("generation", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(256)),
        _when("created_at"),
        _when("updated_at"),
    )
    op.create_table(
        "deployment_keys",
        sa.Column("deployment_id", sa.Integer(), sa.ForeignKey("deployments.id"), primary_key=True),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(256)),
        _when("created_at"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment", sa.String(64), nullable=False),
        _when("at"),
        sa.Column("actor", sa.String(256)),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("data", JSON, nullable=False),
    )
    op.create_index("ix_deployment_events_deployment", "deployment_events", ["deployment", "id"])
    op.create_table(
        "deployment_metrics",
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("minute"),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("buckets", JSON, nullable=False),
        sa.PrimaryKeyConstraint("deployment", "version", "minute"),
    )
    op.create_table(
        "training_references",
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("summary", JSON, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("model_id", "model_version"),
    )
    op.create_table(
        "deployment_samples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("at"),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("predictions", JSON, nullable=False),
    )
    op.create_index("ix_deployment_samples_deployment", "deployment_samples", ["deployment", "id"])


def downgrade() -> None:
    for table in (
        "deployment_samples",
        "training_references",
        "deployment_metrics",
        "deployment_events",
        "deployment_keys",
        "deployments",
    ):
        op.drop_table(table)
