"""PostgreSQL for tests: fresh databases, or a skip (a failure under CELLOPS_REQUIRE_POSTGRES)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_ADMIN = os.environ.get("CELLOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN}: {exc}"


PG_MISSING = _postgres_available()


def require_postgres() -> None:
    if PG_MISSING is None:
        return
    if os.environ.get("CELLOPS_REQUIRE_POSTGRES"):
        pytest.fail(f"CELLOPS_REQUIRE_POSTGRES is set but {PG_MISSING}")
    pytest.skip(PG_MISSING)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    require_postgres()
    name = f"cellops_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
