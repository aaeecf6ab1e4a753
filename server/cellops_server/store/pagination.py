"""Opaque keyset cursors: base64 of the last row's sort key."""

from __future__ import annotations

import base64
import json
from typing import Any


class InvalidCursor(ValueError):
    pass


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidCursor("cursor is not one this API returned; start again without it") from None
    if not isinstance(key, list) or len(key) != arity:
        raise InvalidCursor("cursor is not one this API returned; start again without it")
    return key
