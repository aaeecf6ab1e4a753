"""One delivery attempt: resolve, check the address (targets.py), POST to exactly that
address, read the status line. All of it asynchronous, under one total deadline
(``webhook_timeout``, 10 s by default), so a slow or silent receiver costs a pending
coroutine, never a thread.

HTTPS is verified against the URL's host name (SNI and certificate) while the TCP
connection goes to the checked address. Redirects are not followed: a 3xx is reported as
it is (the outbox records it as a failure). The response body is not read.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass

from .. import __version__
from .targets import Target, TargetRefused, parse_url, pick_address

MAX_HEAD = 64 * 1024  # status line and headers of a response


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: a status code, or an error (``refused``: the target was
    refused before anything was sent)."""

    code: int | None
    error: str | None
    duration_ms: float
    refused: bool = False
    location: str | None = None


async def post(
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    allow_private: bool,
    timeout: float,
) -> Outcome:
    started = time.monotonic()

    def done(code: int | None, error: str | None, **kw: object) -> Outcome:
        return Outcome(code, error, round((time.monotonic() - started) * 1000, 3), **kw)  # type: ignore[arg-type]

    try:
        target = parse_url(url)
        code, location = await asyncio.wait_for(
            _attempt(target, body, headers, allow_private), timeout
        )
    except TargetRefused as exc:
        return done(None, str(exc), refused=True)
    except asyncio.TimeoutError:
        return done(None, f"timed out after {timeout:g} s")
    except ssl.SSLError as exc:
        return done(None, f"TLS error: {exc.reason or exc}")
    except (OSError, EOFError, asyncio.IncompleteReadError, ValueError) as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:500])
    return done(code, None, location=location)


async def _attempt(
    target: Target, body: str, headers: dict[str, str], allow_private: bool
) -> tuple[int, str | None]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {target.host}: {exc.strerror}") from None
    address = pick_address(target, [str(i[4][0]) for i in infos], allow_private)
    tls = ssl.create_default_context() if target.scheme == "https" else None
    reader, writer = await asyncio.open_connection(
        address,
        target.port,
        ssl=tls,
        server_hostname=target.host if tls else None,
        limit=MAX_HEAD,
    )
    try:
        writer.write(_request(target, body, headers))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    return _status(head)


def _request(target: Target, body: str, headers: dict[str, str]) -> bytes:
    payload = body.encode()
    lines = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"User-Agent: cellops-webhooks/{__version__}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + payload


def _status(head: bytes) -> tuple[int, str | None]:
    """The status code of a response head (and its Location, for the log of a redirect)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0][:100]!r}")
    location = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()[:300]
    return int(parts[1]), location
