"""NUL characters in text and JSON on PostgreSQL: escaped on the way in, restored on the way out.

PostgreSQL text cannot hold U+0000 and JSONB refuses ``\\u0000``, yet cell code and outputs
may contain it (a pasted binary string, a C library's message). A string that needs it is
stored as ``MARK`` + the string with ``MARK`` written ``MARK e`` and NUL written ``MARK 0``.
``MARK`` is the noncharacter U+FDD0, which no text is expected to contain; a string that
does start with it is escaped too, so that reading back is exact for every string. Strings
without NUL are stored as they are: the common path costs one substring search.
SQLite holds NUL natively and is left alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

MARK = "\ufdd0"
_MARK_JSON = "\\ufdd0"  # how json.dumps (ensure_ascii) writes MARK
_MARK_UTF8 = MARK.encode()  # how PostgreSQL's JSONB output carries it
_MARK_JSON_UTF8 = _MARK_JSON.encode()
_ESCAPED = re.compile(MARK + "([e0])")
_UNESCAPE = {"e": MARK, "0": "\x00"}


def escape(text: str) -> str:
    if "\x00" not in text and not text.startswith(MARK):
        return text
    return MARK + text.replace(MARK, MARK + "e").replace("\x00", MARK + "0")


def unescape(text: str) -> str:
    if not text.startswith(MARK):
        return text
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group(1)], text[1:])


def _map_strings(value: Any, fn: Any) -> Any:
    """``value`` with ``fn`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(k) if isinstance(k, str) else k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, fn) for v in value]
    return value


def json_dumps(value: Any) -> str:
    """The engine's JSON serializer on PostgreSQL."""
    text = json.dumps(value)
    # "\\u0000" also matches an escaped backslash before "u0000": then escaping finds nothing
    # to change, which is correct, only slower.
    if "\\u0000" in text or _MARK_JSON in text:
        text = json.dumps(_map_strings(value, escape))
    return text


def json_loads(data: str | bytes) -> Any:
    """The engine's JSON deserializer on PostgreSQL (psycopg hands it bytes)."""
    value = json.loads(data)
    marks = (_MARK_UTF8, _MARK_JSON_UTF8) if isinstance(data, bytes) else (MARK, _MARK_JSON)
    if any(mark in data for mark in marks):
        value = _map_strings(value, unescape)
    return value


class NulSafeText(sa.types.TypeDecorator[str]):
    """Text that keeps its NUL characters on PostgreSQL too."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value
        return escape(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value
        return unescape(value)
