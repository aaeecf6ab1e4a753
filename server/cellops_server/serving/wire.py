"""Frames between the router and its workers over a Unix socketpair.

A frame is a 4-byte big-endian length of what follows, a 4-byte length of a small JSON
header, the header, then raw body bytes (a report's JSON, a ``/metrics`` page).
"""

from __future__ import annotations

import json
import struct
from typing import Any

_LEN = struct.Struct(">II")


def encode(header: dict[str, Any], body: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _LEN.pack(4 + len(head) + len(body), len(head)) + head + body


def decode(payload: bytes) -> tuple[dict[str, Any], bytes]:
    """``payload``: a frame without its first 4 bytes."""
    (head_len,) = struct.unpack_from(">I", payload)
    header = json.loads(payload[4 : 4 + head_len])
    return header, payload[4 + head_len :]
