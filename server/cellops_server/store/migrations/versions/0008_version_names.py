"""Names and pins of notebook versions.

A version may carry a name a person gave it ("baseline", "submitted") and be pinned, so
that it stands out and is never folded into a collapsed step of the Versions list.
Existing versions keep everything; they start unnamed and unpinned.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch.add_column(
            sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("pinned")
        batch.drop_column("name")
