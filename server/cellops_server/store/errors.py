"""Which store errors are the data's fault, and which the store's.

A record the store cannot hold (a value PostgreSQL refuses, a constraint it violates) must be
set aside so the rest of its batch lands; only a store that cannot be reached is worth
retrying. psycopg files "program limit exceeded" (SQLSTATE class 54: an index row or a value
too large) under OperationalError, yet it is the value's fault, so PostgreSQL errors are
classified by their SQLSTATE class.
"""

from __future__ import annotations

import sqlalchemy as sa

# SQLSTATE classes of values the database refuses: 22 data exception, 54 program limit
# exceeded (class 23, constraint violations, are conflicts).
_DATA_CLASSES = ("22", "54")


class NotOwner(Exception):
    """The caller tried to change or claim what another member recorded."""


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def is_conflict(exc: BaseException) -> bool:
    """A constraint of the store is violated (unique key, foreign key, not null…)."""
    return isinstance(exc, sa.exc.IntegrityError)


def is_bad_data(exc: BaseException) -> bool:
    """The store refuses a value itself (encoding, NUL, range, size)."""
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in _DATA_CLASSES
    if isinstance(exc, sa.exc.DataError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return False
    # Raised while binding values, before anything reached the database (a lone surrogate
    # cannot be encoded as UTF-8, an integer overflows the driver).
    cause = exc.orig if isinstance(exc, sa.exc.StatementError) else exc
    return isinstance(cause, ValueError | TypeError | OverflowError | RecursionError)


def is_unreachable(exc: BaseException) -> bool:
    """The store cannot be used now (down, locked, out of connections): retry later."""
    if is_bad_data(exc) or is_conflict(exc):
        return False
    return isinstance(
        exc,
        sa.exc.OperationalError
        | sa.exc.InterfaceError
        | sa.exc.DisconnectionError
        | sa.exc.TimeoutError,
    )


def is_record_error(exc: BaseException) -> bool:
    """The records written are at fault: set them aside rather than retry."""
    return is_bad_data(exc) or is_conflict(exc)


def describe(exc: BaseException, limit: int = 1000) -> str:
    """The driver's message, without the SQL and parameters SQLAlchemy appends; storable
    (it may quote the offending value: lone surrogates are escaped)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0] if lines else ''}"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]
