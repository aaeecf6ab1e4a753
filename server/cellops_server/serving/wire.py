"""Frames between the router and its workers over a Unix socketpair.

A frame is a 4-byte big-endian length of what follows, a 4-byte length of a small JSON
header, the header, then the raw body bytes (request or response bodies are never
re-encoded on the way through).
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any, BinaryIO

_LEN = struct.Struct(">II")
MAX_FRAME = 256 * 1024 * 1024


def encode(header: dict[str, Any], body: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _LEN.pack(4 + len(head) + len(body), len(head)) + head + body


def decode(payload: bytes) -> tuple[dict[str, Any], bytes]:
    """``payload``: a frame without its first 4 bytes."""
    (head_len,) = struct.unpack_from(">I", payload)
    header = json.loads(payload[4 : 4 + head_len])
    return header, payload[4 + head_len :]


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """The next frame from a blocking stream; None at end of stream."""
    size = stream.read(4)
    if len(size) < 4:
        return None
    (length,) = struct.unpack(">I", size)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes")
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return decode(payload)


def send_frame(sock: socket.socket, header: dict[str, Any], body: bytes = b"") -> None:
    sock.sendall(encode(header, body))
