"""Opaque keyset cursors: base64url of the last row's sort key, as a JSON list.

A cursor comes back from the client, and its values go into SQL: each page decodes it
with the types its key has (``CursorKey``), so a crafted cursor — a string where an id
goes, an integer past the column, a float, a nested list, a time that does not parse —
is refused as an invalid cursor (400) instead of reaching the database.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field, TypeAdapter, ValidationError

from ..bounds import MAX_INT, StoredTime

MAX_CURSOR = 512  # characters; real cursors are under 100
# What encode_cursor makes, as the OpenAPI document states it (an ECMA-262 pattern).
CURSOR_PATTERN = f"^[A-Za-z0-9_-]{{1,{MAX_CURSOR}}}$"
NOT_OURS = "cursor is not one this API returned; start again without it"

# Keys hold ids, sequence and version numbers (INTEGER columns) and row times.
_Int = Annotated[int, Field(strict=True, ge=0, le=MAX_INT)]
_Time = Annotated[StoredTime, Field(strict=True)]  # an ISO string, not a number


class InvalidCursor(ValueError):
    pass


class CursorKey:
    """The shape of one listing's sort key, e.g. ``CursorKey(_Time, _Int)``."""

    def __init__(self, *types: Any) -> None:
        shape: Any = tuple[types]  # tuple[A, B] for CursorKey(A, B)
        self._adapter: TypeAdapter[tuple[Any, ...]] = TypeAdapter(shape)

    def validate(self, raw: bytes) -> list[Any]:
        return list(self._adapter.validate_json(raw))


BY_ID = CursorKey(_Int)  # runs, executions of a notebook
BY_NUMBER = CursorKey(_Int)  # notebook versions, model versions
BY_SEQ_AND_ID = CursorKey(_Int, _Int)  # executions of a run
BY_TIME_AND_ID = CursorKey(_Time, _Int)  # notebooks, models (most recently changed first)


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, key: CursorKey) -> list[Any] | None:
    """The sort key ``cursor`` carries, typed as ``key`` says; None without a cursor."""
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR:
        raise InvalidCursor(NOT_OURS)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return key.validate(raw)
    except (ValueError, binascii.Error, ValidationError):
        raise InvalidCursor(NOT_OURS) from None


def after_time_and_id(time_col: Any, id_col: Any, key: list[Any]) -> Any:
    """Rows after a BY_TIME_AND_ID cursor in newest-first order (ties broken by id)."""
    at = sa.literal(key[0], time_col.type)
    return sa.or_(time_col < at, sa.and_(time_col == at, id_col < key[1]))
