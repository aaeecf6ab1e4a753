"""Notebook versions stored as changes against their parent.

Existing rows keep their full cell list (``cells_sha``): they are snapshots, read as before.
New rows store a delta and only sometimes a snapshot (store/version_storage.py), so
``cells_sha`` becomes nullable. Downgrading writes a full list for every delta row first.

Revision ID: 0005
Revises: 0004
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.alter_column("cells_sha", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column("delta_deleted", JSON, nullable=True))
        batch.add_column(sa.Column("delta_cell_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("delta_code_sha", sa.String(length=64), nullable=True))


def downgrade() -> None:
    _snapshot_every_version()
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("delta_code_sha")
        batch.drop_column("delta_cell_id")
        batch.drop_column("delta_deleted")
        batch.alter_column("cells_sha", existing_type=sa.String(length=64), nullable=False)


def _snapshot_every_version() -> None:
    """Give each delta row the full cell list the older schema expects (self-contained: the
    application's code may change, this migration may not)."""
    conn = op.get_bind()
    versions = sa.table(
        "versions",
        sa.column("id", sa.Integer),
        sa.column("notebook_id", sa.Integer),
        sa.column("number", sa.Integer),
        sa.column("cells_sha", sa.String),
        sa.column("delta_deleted", JSON),
        sa.column("delta_cell_id", sa.String),
        sa.column("delta_code_sha", sa.String),
    )
    texts = sa.table("texts", sa.column("sha256", sa.String), sa.column("body", sa.Text))
    rows = conn.execute(sa.select(versions).order_by(versions.c.notebook_id, versions.c.number))
    notebook, cells = None, []
    for row in rows.all():
        if row.notebook_id != notebook:
            notebook, cells = row.notebook_id, []
        if row.cells_sha is not None:
            body = conn.scalar(sa.select(texts.c.body).where(texts.c.sha256 == row.cells_sha))
            cells = [tuple(c) for c in json.loads(body or "[]")]
            continue
        gone = set(row.delta_deleted or ())
        cells = [c for c in cells if c[0] not in gone]
        if row.delta_cell_id is not None:
            ids = [c[0] for c in cells]
            new = (row.delta_cell_id, row.delta_code_sha)
            if row.delta_cell_id in ids:
                cells[ids.index(row.delta_cell_id)] = new
            else:
                cells.append(new)
        body = json.dumps(cells, separators=(",", ":"))
        sha = hashlib.sha256(body.encode("utf-8")).hexdigest()
        if conn.scalar(sa.select(texts.c.sha256).where(texts.c.sha256 == sha)) is None:
            conn.execute(texts.insert().values(sha256=sha, body=body))
        conn.execute(versions.update().where(versions.c.id == row.id).values(cells_sha=sha))
