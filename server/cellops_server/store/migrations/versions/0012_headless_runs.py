"""Headless runs (``cellops run``): where a run came from, its parameters, the CI job that
ran it and how it ended.

Columns are added in place (not in batch mode): on SQLite a batch copy of ``runs`` would
drop a table that executions reference.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.add_column(
        "runs",
        sa.Column("origin", sa.String(16), nullable=False, server_default="interactive"),
    )
    op.add_column("runs", sa.Column("parameters", JSON))
    op.add_column("runs", sa.Column("ci", JSON))
    op.add_column("runs", sa.Column("outcome", sa.String(16)))


def downgrade() -> None:
    for column in ("outcome", "ci", "parameters", "origin"):
        op.drop_column("runs", column)
