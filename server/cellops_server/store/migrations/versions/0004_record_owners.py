"""Who first sent each record (ownership), and records the store set aside.

Executions get their owner and source from their run (its user and recording server);
model versions registered before this revision keep an unchecked lineage (null owner).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("owner", sa.String(length=256), nullable=True))
    op.add_column("executions", sa.Column("source", sa.String(length=64), nullable=True))
    executions = sa.table(
        "executions", sa.column("run_id"), sa.column("owner"), sa.column("source")
    )
    runs = sa.table("runs", sa.column("id"), sa.column("user_name"), sa.column("source"))
    of_run = runs.c.id == executions.c.run_id
    op.execute(
        executions.update().values(
            owner=sa.select(runs.c.user_name).where(of_run).scalar_subquery(),
            source=sa.select(runs.c.source).where(of_run).scalar_subquery(),
        )
    )
    op.add_column(
        "model_versions", sa.Column("lineage_owner", sa.String(length=256), nullable=True)
    )
    op.create_table(
        "rejected_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(length=256), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rejected_records_at", "rejected_records", ["at"])


def downgrade() -> None:
    op.drop_index("ix_rejected_records_at", table_name="rejected_records")
    op.drop_table("rejected_records")
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy of executions would trip
    # the foreign keys that point at it.
    op.drop_column("model_versions", "lineage_owner")
    op.drop_column("executions", "source")
    op.drop_column("executions", "owner")
