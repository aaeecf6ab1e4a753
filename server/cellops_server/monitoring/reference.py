"""Training references of model versions: validated, stored and read back.

The summary itself is made in the kernel by ``cellops.reference.summarize`` (numpy only,
no server code); this module is the server's side of it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cellops.reference import MAX_BYTES, check, summarize

from ..store.tables import models, training_references

__all__ = ["MAX_BYTES", "check", "forget", "reference_of", "store_reference", "summarize"]


def store_reference(
    conn: sa.Connection, model_id: int, version: int, summary: dict[str, Any], at: datetime
) -> None:
    """Store a version's reference, in the registration's transaction (``check`` it first)."""
    conn.execute(
        sa.insert(training_references).values(
            model_id=model_id, model_version=version, summary=summary, created_at=at
        )
    )


def reference_of(conn: sa.Connection, model_id: int, version: int) -> dict[str, Any] | None:
    return conn.scalar(
        sa.select(training_references.c.summary).where(
            training_references.c.model_id == model_id,
            training_references.c.model_version == version,
        )
    )


def reference_by_name(conn: sa.Connection, model: str, version: int) -> dict[str, Any] | None:
    """The reference of ``model`` version ``version`` (None: the version has none)."""
    model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == model))
    return None if model_id is None else reference_of(conn, model_id, version)


def forget(conn: sa.Connection, model_id: int, version: int | None = None) -> None:
    """Remove the references of a deleted version (or of every version of a deleted model)."""
    q = sa.delete(training_references).where(training_references.c.model_id == model_id)
    if version is not None:
        q = q.where(training_references.c.model_version == version)
    conn.execute(q)
