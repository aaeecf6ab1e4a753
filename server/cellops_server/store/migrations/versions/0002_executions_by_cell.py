"""Index executions by cell, for a cell's history.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_executions_cell", "executions", ["notebook_id", "cell_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_executions_cell", table_name="executions")
