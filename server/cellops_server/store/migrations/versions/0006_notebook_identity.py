"""Notebook identity: whose file (or which git repository's), not the path alone.

``path`` stops being unique; ``key`` (see cellops_server/identity.py) is. Existing rows
keep every run, execution and version. A team store's notebook becomes its runs' user's; a
path whose runs several members recorded stays one notebook (its versions interleave their
cells, so splitting it could not give either member a true history), owned by the member of
its first run. An embedded store (no team users) has one user: its notebooks have no owner.

Revision ID: 0006
Revises: 0005
"""

import hashlib
import json
import logging

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}  # SQLite's unique(path) has no name


def _key(path: str, owner: str | None) -> str:
    """identity.notebook_key for a notebook outside git (copied: a migration stays fixed)."""
    parts = ["member" if owner else "local", owner or "", path.strip("/")]
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("notebooks") as batch:
        batch.add_column(sa.Column("key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("repo", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("repo_path", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("copied_from", sa.Integer(), nullable=True))
    _fill_identity()
    # SQLite's batch rebuild runs with foreign keys off (store/engine.py's migrate).
    uq_path = (
        "uq_notebooks_path" if op.get_bind().dialect.name == "sqlite" else "notebooks_path_key"
    )
    with op.batch_alter_table("notebooks", naming_convention=NAMES) as batch:
        batch.drop_constraint(uq_path, type_="unique")
        batch.alter_column("key", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_notebooks_key", ["key"])
        batch.create_foreign_key("fk_notebooks_copied_from", "notebooks", ["copied_from"], ["id"])
        batch.create_index("ix_notebooks_path", ["path"])


def _fill_identity() -> None:
    conn = op.get_bind()
    notebooks = sa.table(
        "notebooks", sa.column("id"), sa.column("path"), sa.column("key"), sa.column("owner")
    )
    runs = sa.table("runs", sa.column("id"), sa.column("notebook_id"), sa.column("user_name"))
    team_store = conn.scalar(sa.text("SELECT count(*) FROM users")) > 0
    first_users: dict[int, list[str]] = {}
    if team_store:
        rows = conn.execute(
            sa.select(runs.c.notebook_id, runs.c.user_name)
            .where(runs.c.user_name.is_not(None))
            .order_by(runs.c.notebook_id, runs.c.id)
        )
        for notebook_id, user in rows:
            users = first_users.setdefault(notebook_id, [])
            if user not in users:
                users.append(user)
    updates = []
    for notebook_id, path in conn.execute(sa.select(notebooks.c.id, notebooks.c.path)):
        users = first_users.get(notebook_id, [])
        owner = users[0] if users else None
        if len(users) > 1:
            log.warning(
                "cellops: notebook %r has runs by %s: kept as one notebook, owned by %s",
                path,
                ", ".join(users),
                owner,
            )
        updates.append({"_id": notebook_id, "key": _key(path, owner), "owner": owner})
    if updates:
        conn.execute(
            notebooks.update()
            .where(notebooks.c.id == sa.bindparam("_id"))
            .values(key=sa.bindparam("key"), owner=sa.bindparam("owner")),
            updates,
        )


def downgrade() -> None:
    # Paths are unique again only if no two notebooks share one: refuse rather than merge.
    conn = op.get_bind()
    shared = conn.scalar(
        sa.text("SELECT path FROM notebooks GROUP BY path HAVING count(*) > 1 LIMIT 1")
    )
    if shared is not None:
        raise RuntimeError(
            f"cannot downgrade: several notebooks share the path {shared!r} (one per member)"
        )
    with op.batch_alter_table("notebooks", naming_convention=NAMES) as batch:
        batch.drop_index("ix_notebooks_path")
        batch.drop_constraint("fk_notebooks_copied_from", type_="foreignkey")
        batch.drop_constraint("uq_notebooks_key", type_="unique")
        batch.drop_column("copied_from")
        batch.drop_column("repo_path")
        batch.drop_column("repo")
        batch.drop_column("owner")
        batch.drop_column("key")
        batch.create_unique_constraint("uq_notebooks_path", ["path"])
