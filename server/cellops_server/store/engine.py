"""Engines for SQLite (WAL, the embedded default) and PostgreSQL (psycopg 3), and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from ..private import make_private, private_file
from . import escaping

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreConfigError(ValueError):
    """The database URL cannot be used; the message says what to change."""


def normalize_url(url: str) -> sa.URL:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreConfigError(f"Not a database URL: {url!r} ({exc})") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreConfigError(
            f"cellops supports sqlite:/// and postgresql:// URLs, not {parsed.drivername!r}"
        )
    return parsed


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" event below starts transactions.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that later writes
    # can fail with SQLITE_BUSY instead of waiting when another process wrote first.
    mode = "IMMEDIATE" if conn.get_execution_options().get("cellops_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that writes: on SQLite it takes the write lock up front (BEGIN
    IMMEDIATE), so it waits for another writer instead of failing half way."""
    with engine.connect().execution_options(cellops_write=True) as conn, conn.begin():
        yield conn


def _private_sqlite_files(database: Path) -> None:
    """Create the database file 0600 before SQLite opens it: SQLite gives its -wal and -shm
    files the database file's mode, so all three are readable by their owner only."""
    private_file(database)
    for suffix in ("-wal", "-shm", "-journal"):  # left by an older version, maybe wider
        make_private(database.with_name(database.name + suffix))


def create_engine(url: str) -> sa.Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_files(Path(parsed.database))
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    # JSONB cannot hold "\u0000": escape it in and out (store/escaping.py).
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        json_serializer=escaping.json_dumps,
        json_deserializer=escaping.json_loads,
    )


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        # SQLite rebuilds a table to change a constraint (the batch mode of migrations):
        # dropping the old copy must not cascade to the rows that point at it. The pragma only
        # takes effect outside a transaction; the keys are checked before committing instead.
        if sqlite:
            _sqlite_pragma(conn, "foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"migration left dangling references: {broken[:5]}")
        finally:
            if sqlite:
                _sqlite_pragma(conn, "foreign_keys=ON")


def _sqlite_pragma(conn: sa.Connection, pragma: str) -> None:
    """Run a PRAGMA on the driver's connection, outside SQLAlchemy's transaction."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute(f"PRAGMA {pragma}")
