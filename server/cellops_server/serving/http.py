"""HTTP/1.1 for the serving listener: llhttp (through httptools) parses, asyncio carries.

The serving listener answers tiny requests at high rates; a full web framework costs more
per request than the model does (tornado ≈ 0.6 ms, measured), so the listener speaks HTTP
itself. Parsing is llhttp's (Node's parser, strict mode): it refuses the ambiguous shapes
request smuggling is made of (signs, underscores or hex in Content-Length, duplicate
Content-Length, Content-Length with Transfer-Encoding, odd chunk sizes, obs-fold, bare LF).
This module adds what llhttp leaves to its user: limits (head, body, time to send a head),
origin-form targets, ``Expect: 100-continue``, and answering pipelined requests in order,
one at a time. A malformed request is answered 400 and the connection closed: nothing sent
after it on that connection is processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

log = logging.getLogger("cellops.serving.http")

MAX_HEAD = 64 * 1024  # request line + headers
MAX_BODY = 64 * 1024 * 1024
HEAD_TIMEOUT = 10.0  # seconds a client has to send a whole head (slow-loris guard)
# A body must arrive at this many bytes a second on average, after a first HEAD_TIMEOUT
# (Apache's mod_reqtimeout defaults): a body trickled slower holds a connection for nothing.
MIN_BODY_RATE = 500
MAX_QUEUED = 16  # pipelined requests waiting before reading pauses
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def raise_open_files_limit() -> None:
    """Every open connection is a descriptor in the router and one in a worker: allow as
    many as the hard limit does, rather than the usual soft 1,024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def json_response(status: int, value: Any, **headers: str) -> Response:
    return Response(status, json.dumps(value).encode(), headers=headers)


def error(status: int, message: str, **headers: str) -> Response:
    return json_response(status, {"error": message}, **headers)


# A handler answers at once (a Response) or when an awaitable completes.
Handler = Callable[[Request], "Response | Awaitable[Response]"]

_STATUS_LINES: dict[int, bytes] = {}
_METHODS: dict[bytes, str] = {}
_NAMES: dict[bytes, str] = {}  # header names as sent -> lower case; a bounded cache
MAX_NAMES = 512
_INTERNAL = "internal error (logged by the server)"


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode()
    return line


def render(response: Response, keep_alive: bool) -> bytes:
    parts = [f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"]
    parts += [f"{k}: {v}\r\n" for k, v in response.headers.items()]
    if not keep_alive:
        parts.append("Connection: close\r\n")
    head = "".join(parts)
    # a CR or LF inside a header value (a model's content type, say) would split the response
    if head.count("\n") != len(parts) + 1 or head.count("\r") != len(parts) + 1:
        log.error("response header with a line break refused: %r", head)
        return render(error(500, _INTERNAL), keep_alive)
    return _status_line(response.status) + head.encode("latin-1") + b"\r\n" + response.body


class _Refused(Exception):
    """Raised inside a parser callback: answer ``response`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = error(status, message)


class HttpProtocol(asyncio.Protocol):
    """One client connection. llhttp calls the ``on_*`` methods while ``feed_data`` runs."""

    def __init__(
        self,
        handler: Handler,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        min_body_rate: float = MIN_BODY_RATE,
        close_after_answer: bool = False,
        max_requests: int | None = None,
    ) -> None:
        self.handler = handler
        self.close_after_answer = close_after_answer  # one request per connection
        # After this many answers the connection is closed (Connection: close), so a
        # long-lived client reconnects now and then and its load can move to another
        # worker (nginx's keepalive_requests).
        self.requests_left = max_requests
        self.head_timeout = head_timeout
        self.min_body_rate = min_body_rate
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()  # made by the loop's protocol factory
        # parsed requests (or the final error answer) waiting for their turn, in order
        self.queue: deque[tuple[Request, bool] | Response] = deque()
        self.queued_bytes = 0
        self.busy = False  # a handler is running
        self.keep_alive = True  # of the request being handled
        self.closing = False
        self.stopped = False  # nothing more is parsed on this connection
        self.paused = False
        self.timer: asyncio.TimerHandle | None = None
        # the message being parsed
        self.in_head = True  # a connection that sends nothing counts as a slow head
        self.head_started = 0.0
        self.head_size = 0  # bytes of target and headers seen
        self.head_stream = 0  # bytes of reads that fell wholly inside the head
        self.fresh = False  # the head began during the current read
        self.url = b""
        self.method = ""
        self.path = ""
        self.query = ""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.body_size = 0
        self.in_body = False  # between the head and the end of the message
        self.body_started = 0.0
        self.expect = False  # owes a 100 Continue once earlier requests are answered
        self.upgrade = False

    # -- asyncio ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.head_started = self.loop.time()
        self.timer = self.loop.call_later(self.head_timeout, self._check_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return  # after an error answer: read and drop, so the close is a clean FIN
        self.fresh = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.stopped = True  # the upgraded request is answered, then the connection closes
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__  # what our callback raised
            if isinstance(refused, _Refused):
                self._fail(refused.response)
            else:
                log.error("parsing a request failed", exc_info=refused or exc)
                self._fail(error(400, "malformed request"))
        except httptools.HttpParserError as exc:
            self._fail(error(400, f"malformed request: {exc}"))
        else:
            if self.in_head and not self.fresh:
                self.head_stream += len(data)
                if self.head_stream > MAX_HEAD:
                    self._fail(error(431, f"request head over {MAX_HEAD} bytes"))
        if not self.busy:
            self._next()
        if self.paused or self.closing:
            return
        if len(self.queue) >= MAX_QUEUED or self.queued_bytes > MAX_BODY:
            self.paused = True  # a client pipelining without reading the answers
            self.transport.pause_reading()  # type: ignore[union-attr]

    # -- llhttp callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = self.fresh = True
        self.head_started = self.loop.time()
        self.head_size = self.head_stream = self.body_size = 0
        self.url = b""
        self.headers = {}
        self.body = []
        self.upgrade = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)
        if self.head_size > MAX_HEAD:
            raise _Refused(431, f"request head over {MAX_HEAD} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD:
            raise _Refused(431, f"request head over {MAX_HEAD} bytes")
        key = _NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_NAMES) < MAX_NAMES:
                _NAMES[name] = key
        text = value.decode("latin-1").strip()
        old = self.headers.get(key)
        if old is None:
            self.headers[key] = text
        elif key == "host":
            raise _Refused(400, "more than one Host header")
        else:
            self.headers[key] = f"{old}, {text}"  # RFC 9110 5.3: repeats are one list

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.in_body = True  # until on_message_complete, at once for a request without one
        self.body_started = self.loop.time()
        parser = self.parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise _Refused(400, f"HTTP/{version} is not spoken here; use HTTP/1.1")
        raw = parser.get_method()
        method = _METHODS.get(raw)
        if method is None:
            method = _METHODS[raw] = raw.decode("ascii")
        self.method = method
        self._target()
        headers = self.headers
        te = headers.get("transfer-encoding")
        if te is not None and te.lower() != "chunked":
            raise _Refused(501, f"Transfer-Encoding {te!r} is not supported; send chunked only")
        length = headers.get("content-length")
        if length is not None and int(length) > MAX_BODY:  # llhttp checked: digits only
            raise _Refused(413, f"body over {MAX_BODY} bytes")
        if parser.should_upgrade():
            if te is not None or (length is not None and int(length) > 0):
                raise _Refused(400, "Upgrade is not supported; send the request without it")
            self.upgrade = True  # answered as plain HTTP/1.1, then the connection closes
        expect = headers.get("expect")
        if expect is not None:
            self._expect(expect, version)

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > MAX_BODY:
            raise _Refused(413, f"body over {MAX_BODY} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.expect = self.in_body = False
        body = b"".join(self.body)
        keep_alive = self.parser.should_keep_alive() and not self.upgrade
        self.queue.append(
            (Request(self.method, self.path, self.query, self.headers, body), keep_alive)
        )
        self.queued_bytes += len(body)

    def _target(self) -> None:
        url = self.url
        if url[:1] != b"/" or b"#" in url:
            raise _Refused(400, "the request target must be a path starting with '/'")
        raw_path, _, raw_query = url.partition(b"?")
        path = raw_path.decode("ascii")  # llhttp refuses bytes outside ASCII in a target
        if "%" in path:
            path = unquote(path)
            if "\x00" in path:
                raise _Refused(400, "the path contains a NUL byte (%00)")
        self.path = path
        self.query = raw_query.decode("ascii")

    # -- answering ----------------------------------------------------------------------------

    def _expect(self, expect: str, version: str) -> None:
        if expect.lower() != "100-continue":
            raise _Refused(417, f"Expect {expect!r} is not supported; only 100-continue is")
        if version == "1.0":
            return  # RFC 9110 10.1.1: no 100 to an HTTP/1.0 client
        if self.busy or self.queue:
            self.expect = True  # a 100 now would land among earlier requests' answers
        elif self.transport is not None:
            self.transport.write(CONTINUE)

    def _fail(self, response: Response) -> None:
        """Answer ``response`` after the requests before it, then close; parse no more."""
        self.stopped = True
        self.queue.append(response)

    def _next(self) -> None:
        queue = self.queue
        while queue and not self.busy and not self.closing:
            item = queue.popleft()
            if isinstance(item, Response):
                self._send(item, keep_alive=False)
                return
            request, self.keep_alive = item
            self.queued_bytes -= len(request.body)
            try:
                answer = self.handler(request)
            except Exception:
                log.exception("request handler failed")
                answer = error(500, _INTERNAL)
            if isinstance(answer, Response):  # answered at once: no task, no extra loop turn
                self._answered(answer)
            else:
                self.busy = True
                self.loop.create_task(answer).add_done_callback(self._done)  # type: ignore[arg-type]
        if self.paused and len(queue) < MAX_QUEUED // 2 and self.queued_bytes <= MAX_BODY // 2:
            self.paused = False
            if not self.closing:
                self.transport.resume_reading()  # type: ignore[union-attr]

    def _done(self, task: asyncio.Task[Response]) -> None:
        self.busy = False
        if task.cancelled():
            response = error(503, "the server is stopping; retry", **{"Retry-After": "1"})
        elif (exc := task.exception()) is not None:
            log.error("request handler failed", exc_info=exc)
            response = error(500, _INTERNAL)
        else:
            response = task.result()
        self._answered(response)
        if not self.closing:
            self._next()

    def _answered(self, response: Response) -> None:
        keep_alive = self.keep_alive and not self.close_after_answer
        if self.requests_left is not None:
            self.requests_left -= 1
            keep_alive = keep_alive and self.requests_left > 0
        self._send(response, keep_alive)
        if self.expect and not self.queue and not self.closing and self.transport is not None:
            self.expect = False
            self.body_started = self.loop.time()  # the client waited for this to send it
            self.transport.write(CONTINUE)

    def _send(self, response: Response, keep_alive: bool) -> None:
        if self.transport is None or self.closing:
            return
        self.transport.write(render(response, keep_alive))
        if not keep_alive:
            self.closing = self.stopped = True
            self.queue.clear()
            self.transport.close()

    def _check_slow(self) -> None:
        """Close a connection whose head has been arriving for longer than ``head_timeout``,
        or whose body arrives slower than ``min_body_rate`` after that long (408)."""
        if self.closing:
            return
        delay = self.head_timeout
        if not self.paused and not self.stopped and not self.busy and not self.expect:
            now = self.loop.time()
            if self.in_head:
                left = self.head_started + self.head_timeout - now
                slow = f"no complete request head within {self.head_timeout:g} s"
            elif self.in_body:
                allowed = self.head_timeout + self.body_size / self.min_body_rate
                left = self.body_started + allowed - now
                slow = f"the body arrives slower than {self.min_body_rate:g} bytes a second"
            else:
                left = delay  # idle between requests: keep-alive is not timed
                slow = ""
            if left <= 0:
                self._fail(error(408, slow))
                self._next()
                return
            delay = left
        self.timer = self.loop.call_later(delay, self._check_slow)
