"""Sending tap records to the team backend as a member, and reading what it kept."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from cellops_server.store import create_engine
from cellops_server.store.tables import rejected_records

from .conftest import API, Team


def ingest(team: Team, member: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /ingest as ``member``; the answer (200 expected: bad records are set aside)."""
    r = team.as_(member).request("POST", f"{API}/ingest", json={"records": records})
    assert r.status_code == 200, r.text
    return r.json()


def executions_of(team: Team, notebook: str) -> list[dict[str, Any]]:
    """What a viewer reads of a notebook's executions, newest first."""
    return team.as_("vera").cellops("executions", notebook=notebook)["items"]


def rejected_from(db_url: str, sender: str | None) -> list[Any]:
    """What a store kept of the records it set aside (sender None: embedded mode)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(rejected_records).where(
                        rejected_records.c.sender.is_not_distinct_from(sender)
                    )
                )
            )
    finally:
        engine.dispose()
