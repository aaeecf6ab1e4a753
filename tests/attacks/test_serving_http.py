"""The serving listener's HTTP layer (serving/http.py) against hostile and odd clients.

A real asyncio server with ``HttpProtocol`` runs in a background thread; the tests talk
raw bytes over real sockets, so every byte the parser sees is the byte a smuggler would
send. The handler echoes what it was given, so a test can tell exactly which requests
reached the application and with which body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cellops_server.serving import http
from cellops_server.serving.http import (
    MIN_BODY_RATE,
    HttpProtocol,
    Request,
    Response,
    json_response,
)

HEAD_TIMEOUT = 0.5


@dataclass
class Server:
    port: int
    loop: asyncio.AbstractEventLoop
    hold: asyncio.Event
    protocols: list[HttpProtocol] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # paths the handler was called with

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self.hold.set)


async def _handler(server: Server, request: Request) -> Response:
    server.calls.append(request.path)
    if request.path == "/boom":
        raise RuntimeError("secret detail from inside the handler")
    if request.path == "/hold":
        await server.hold.wait()
    elif request.path == "/delay":
        await asyncio.sleep(0.05)  # a slow request first: later ones must still wait for it
    return json_response(
        200,
        {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": request.headers,
            "body_len": len(request.body),
            "body": request.body[:200].decode("latin-1"),
        },
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, Any] = {}

    async def start() -> None:
        srv = Server(0, loop, asyncio.Event())

        def factory() -> HttpProtocol:
            proto = HttpProtocol(lambda r: _handler(srv, r), head_timeout=HEAD_TIMEOUT)
            srv.protocols.append(proto)
            return proto

        listener = await loop.create_server(factory, "127.0.0.1", 0)
        srv.port = listener.sockets[0].getsockname()[1]
        box["server"], box["listener"] = srv, listener
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    yield box["server"]
    loop.call_soon_threadsafe(box["listener"].close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(autouse=True)
def _fresh(server: Server) -> None:
    server.calls.clear()
    server.protocols.clear()
    server.loop.call_soon_threadsafe(server.hold.clear)


# -- a raw client -------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Conn:
    """A client socket with its own read buffer (so "nothing arrived" can be asked without
    blocking, which a socket file cannot do)."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buf += data
        return bool(data)

    def readline(self) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            if not self._fill():
                end = len(self.buf) - 1
                break
        line = bytes(self.buf[: end + 1])
        del self.buf[: end + 1]
        return line

    def read(self, size: int) -> bytes:
        while len(self.buf) < size and self._fill():
            pass
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def reply(self) -> Reply | None:
        """The next response, or None if the server closed the connection."""
        line = self.readline()
        if not line:
            return None
        status = int(line.split(b" ")[1])
        headers: dict[str, str] = {}
        while (line := self.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.lower()] = value.strip()
        body = self.read(int(headers.get("content-length", "0")))
        return Reply(status, headers, body)

    def after(self, wait: float) -> bytes | None:
        """What the server sends next: None if nothing within ``wait`` s, b"" if it closed."""
        if not self.buf and not select.select([self.sock], [], [], wait)[0]:
            return None
        if not self.buf:
            self._fill()
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def closed(self) -> bool:
        return self.after(5.0) == b""

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def conn(server: Server) -> Iterator[Conn]:
    c = Conn(server)
    yield c
    c.close()


def post(body: bytes, *extra: str, path: str = "/echo") -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: test", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def refused(conn: Conn, raw: bytes, status: int = 400) -> Reply:
    """Send ``raw`` followed by a valid request; only one answer, ``status``, then EOF."""
    conn.send(raw + b"GET /after HTTP/1.1\r\nHost: test\r\n\r\n")
    reply = conn.reply()
    assert reply is not None and reply.status == status, reply
    assert reply.headers["connection"] == "close"
    assert reply.json()["error"]
    assert conn.closed(), "the connection stays open after a bad request"
    return reply


# -- Content-Length and Transfer-Encoding ---------------------------------------------------------


@pytest.mark.parametrize("value", ["+5", "1_0", "-1", "0x5", "5,5", "5 5", ""])
def test_content_length_that_is_not_plain_digits_is_refused(
    server: Server, conn: Conn, value: str
) -> None:
    reply = refused(conn, post(b"hello", f"Content-Length: {value}"))
    assert "Content-Length" in reply.json()["error"]
    assert server.calls == [], "the handler saw a request with an ambiguous length"


def test_content_length_with_surrounding_whitespace_is_the_number(conn: Conn) -> None:
    # RFC 9110 5.5: whitespace around a field value is not part of it
    conn.send(post(b"hello", "Content-Length:   5  "))
    reply = conn.reply()
    assert reply is not None and reply.status == 200
    assert reply.json()["body_len"] == 5


@pytest.mark.parametrize("second", ["5", "3"])
def test_duplicate_content_length_is_refused(server: Server, conn: Conn, second: str) -> None:
    reply = refused(conn, post(b"hello", "Content-Length: 5", f"Content-Length: {second}"))
    assert "Duplicate Content-Length" in reply.json()["error"]
    assert server.calls == []


def test_content_length_with_transfer_encoding_is_refused(server: Server, conn: Conn) -> None:
    raw = post(b"0\r\n\r\n", "Content-Length: 5", "Transfer-Encoding: chunked")
    reply = refused(conn, raw)
    assert "Transfer-Encoding" in reply.json()["error"]
    assert server.calls == []


@pytest.mark.parametrize(
    ("value", "status"),
    [("gzip, chunked", 501), ("xchunked", 501), ("identity", 501), ("chunked, identity", 400)],
)
def test_transfer_encoding_other_than_chunked_is_refused(
    server: Server, conn: Conn, value: str, status: int
) -> None:
    # 501: a coding other than chunked (RFC 9112 6.1); llhttp itself 400s chunked-not-last
    reply = refused(conn, post(b"5\r\nhello\r\n0\r\n\r\n", f"Transfer-Encoding: {value}"), status)
    assert "Transfer-Encoding" in reply.json()["error"]
    assert server.calls == []


def test_two_transfer_encoding_lines_are_refused(server: Server, conn: Conn) -> None:
    raw = post(b"0\r\n\r\n", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip")
    refused(conn, raw)
    assert server.calls == []


# -- chunked bodies ---------------------------------------------------------------------------------

CHUNKED = "Transfer-Encoding: chunked"


def test_chunked_body_is_assembled(conn: Conn) -> None:
    conn.send(post(b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\n\r\n", CHUNKED))
    reply = conn.reply()
    assert reply is not None and reply.status == 200
    assert reply.json()["body"] == "hello world"


@pytest.mark.parametrize("size", [b"0x5", b"+5", b"1_0", b"5 ;ext", b" 5", b"-5", b"f" * 20])
def test_chunk_size_that_is_not_plain_hex_is_refused(
    server: Server, conn: Conn, size: bytes
) -> None:
    reply = refused(conn, post(size + b"\r\nhello\r\n0\r\n\r\n", CHUNKED))
    assert "chunk size" in reply.json()["error"].lower()
    assert server.calls == []


def test_chunk_without_its_crlf_is_refused(server: Server, conn: Conn) -> None:
    refused(conn, post(b"5\r\nhelloX0\r\n\r\n", CHUNKED))
    assert server.calls == []


def test_last_chunk_without_final_crlf_is_refused(server: Server, conn: Conn) -> None:
    # "0\r\n" then a request line: the next request must not be read as a trailer or a request
    refused(conn, post(b"5\r\nhello\r\n0\r\n", CHUNKED))
    assert server.calls == []


# -- heads --------------------------------------------------------------------------------------


def test_obs_fold_is_refused(server: Server, conn: Conn) -> None:
    refused(conn, b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\n b\r\n\r\n")
    assert server.calls == []


def test_header_name_with_space_before_colon_is_refused(server: Server, conn: Conn) -> None:
    reply = refused(conn, post(b"hello", "Content-Length : 5"))
    assert "header" in reply.json()["error"]
    assert server.calls == []


@pytest.mark.parametrize("target", [b"/a\x00b", b"/a%00b"])
def test_nul_in_path_is_refused(server: Server, conn: Conn, target: bytes) -> None:
    refused(conn, b"GET " + target + b" HTTP/1.1\r\nHost: test\r\n\r\n")
    assert server.calls == []


@pytest.mark.parametrize("target", [b"http://test/echo", b"*", b"/echo#frag", b"echo"])
def test_target_that_is_not_a_path_is_refused(server: Server, conn: Conn, target: bytes) -> None:
    reply = refused(conn, b"OPTIONS " + target + b" HTTP/1.1\r\nHost: test\r\n\r\n")
    assert "target" in reply.json()["error"] or "url" in reply.json()["error"]
    assert server.calls == []


@pytest.mark.parametrize(
    "raw",
    [b"GET / HTTP/1.1\nHost: test\n\n", b"GET / HTTP/1.1\r\nHost: test\n\r\n"],
    ids=["all-lf", "one-lf"],
)
def test_bare_lf_line_endings_are_refused(server: Server, conn: Conn, raw: bytes) -> None:
    # llhttp in strict mode (no leniencies set) wants CRLF everywhere; we keep it strict
    refused(conn, raw)
    assert server.calls == []


def test_duplicate_host_is_refused(server: Server, conn: Conn) -> None:
    refused(conn, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert server.calls == []


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/0.9"])
def test_other_http_versions_are_refused(server: Server, conn: Conn, version: bytes) -> None:
    reply = refused(conn, b"GET / " + version + b"\r\nHost: test\r\n\r\n")
    assert "HTTP/1.1" in reply.json()["error"]
    assert server.calls == []


def test_head_over_the_limit_is_refused(server: Server, conn: Conn) -> None:
    big = "x" * (http.MAX_HEAD + 1)
    refused(conn, f"GET / HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n".encode(), 431)
    assert server.calls == []


def test_head_growing_over_the_limit_in_pieces_is_refused(server: Server, conn: Conn) -> None:
    # one header value that never ends, sent in pieces: refused before it ends
    conn.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ")
    piece = b"x" * 8192
    for _ in range(2 * http.MAX_HEAD // len(piece) + 40):
        try:
            conn.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
    reply = conn.reply()
    assert reply is not None and reply.status == 431
    assert server.calls == []


def test_repeated_headers_are_one_list_and_names_lower_case(conn: Conn) -> None:
    conn.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Tag: a\r\nx-tag: b\r\n\r\n")
    reply = conn.reply()
    assert reply is not None and reply.json()["headers"]["x-tag"] == "a, b"


def test_path_is_percent_decoded_and_query_kept_raw(conn: Conn) -> None:
    conn.send(b"GET /v2/models/a%20b/infer?x=%20y&z=1 HTTP/1.1\r\nHost: test\r\n\r\n")
    reply = conn.reply()
    assert reply is not None
    assert (reply.json()["path"], reply.json()["query"]) == ("/v2/models/a b/infer", "x=%20y&z=1")


# -- bodies and limits -------------------------------------------------------------------------


def test_body_over_the_limit_is_refused_before_it_is_sent(server: Server, conn: Conn) -> None:
    # only the head goes out: a 413 that arrives now did not wait for (or buffer) the body
    conn.send(post(b"", f"Content-Length: {http.MAX_BODY + 1}"))
    reply = conn.reply()
    assert reply is not None and reply.status == 413
    assert str(http.MAX_BODY) in reply.json()["error"]
    assert conn.closed()
    assert server.calls == []


def test_chunked_body_over_the_limit_is_refused(
    server: Server, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "MAX_BODY", 1000)
    chunk = b"%x\r\n%s\r\n" % (600, b"a" * 600)
    conn.send(post(chunk * 2, CHUNKED))  # 1200 bytes and no last chunk: refused mid-body
    reply = conn.reply()
    assert reply is not None and reply.status == 413
    assert conn.closed()
    assert server.calls == []


# -- connections ---------------------------------------------------------------------------------


def get(path: str, version: str = "1.1", *extra: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/{version}", "Host: test", *extra]) + "\r\n\r\n").encode()


def test_pipelined_requests_are_answered_in_order(server: Server, conn: Conn) -> None:
    conn.send(get("/delay") + get("/a") + post(b"xyz", "Content-Length: 3", path="/b"))
    paths = [(r := conn.reply()) and r.json()["path"] for _ in range(3)]
    assert paths == ["/delay", "/a", "/b"]
    assert server.calls == ["/delay", "/a", "/b"]


def test_keep_alive_by_default_in_http_1_1(conn: Conn) -> None:
    for path in ("/one", "/two"):
        conn.send(get(path))
        reply = conn.reply()
        assert reply is not None and reply.json()["path"] == path
        assert "connection" not in reply.headers


def test_http_1_1_connection_close_closes(server: Server, conn: Conn) -> None:
    conn.send(get("/one", "1.1", "Connection: close") + get("/two"))
    reply = conn.reply()
    assert reply is not None and reply.headers["connection"] == "close"
    assert conn.closed()
    assert server.calls == ["/one"]


def test_http_1_0_closes_unless_keep_alive(server: Server) -> None:
    plain = Conn(server)
    plain.send(get("/old", "1.0"))
    reply = plain.reply()
    assert reply is not None and reply.status == 200
    assert reply.headers["connection"] == "close"
    assert plain.closed()
    plain.close()

    kept = Conn(server)
    for path in ("/k1", "/k2"):
        kept.send(get(path, "1.0", "Connection: keep-alive"))
        reply = kept.reply()
        assert reply is not None and reply.json()["path"] == path
    kept.close()


def test_expect_100_continue(server: Server, conn: Conn) -> None:
    conn.send(post(b"", "Content-Length: 5", "Expect: 100-continue"))
    assert conn.readline() == b"HTTP/1.1 100 Continue\r\n"
    assert conn.readline() == b"\r\n"
    conn.send(b"hello")
    reply = conn.reply()
    assert reply is not None and reply.status == 200 and reply.json()["body"] == "hello"


def test_expect_100_continue_waits_for_earlier_answers(server: Server, conn: Conn) -> None:
    # the 100 belongs to the second request: it must come after the first one's answer
    conn.send(get("/hold") + post(b"", "Content-Length: 5", "Expect: 100-continue"))
    wait_for(lambda: server.calls == ["/hold"])
    server.release()
    first = conn.reply()
    assert first is not None and first.status == 200 and first.json()["path"] == "/hold"
    assert conn.readline() == b"HTTP/1.1 100 Continue\r\n"
    assert conn.readline() == b"\r\n"
    conn.send(b"hello")
    second = conn.reply()
    assert second is not None and second.json()["body_len"] == 5


def test_expect_over_the_limit_gets_413_not_100(conn: Conn) -> None:
    conn.send(post(b"", f"Content-Length: {http.MAX_BODY + 1}", "Expect: 100-continue"))
    reply = conn.reply()
    assert reply is not None and reply.status == 413


def test_unknown_expectation_is_refused(conn: Conn) -> None:
    refused(conn, post(b"", "Content-Length: 0", "Expect: something-else"), 417)


def test_smuggled_request_in_a_body_is_only_a_body(server: Server, conn: Conn) -> None:
    inner = b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
    conn.send(post(inner, f"Content-Length: {len(inner)}"))
    reply = conn.reply()
    assert reply is not None and reply.json()["body_len"] == len(inner)
    assert conn.after(0.3) is None, "a second response (or a close) followed"
    assert server.calls == ["/echo"]


def test_cl_te_smuggling_shape_gets_one_answer(server: Server, conn: Conn) -> None:
    # a front end using Content-Length forwards all of it; one using chunked sees two requests
    inner = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
    refused(conn, post(inner, f"Content-Length: {len(inner)}", CHUNKED))
    assert "/smuggled" not in server.calls and server.calls == []


def test_upgrade_is_answered_as_http_1_1_then_closed(server: Server, conn: Conn) -> None:
    conn.send(get("/up", "1.1", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c") + get("/x"))
    reply = conn.reply()
    assert reply is not None and reply.status == 200 and reply.headers["connection"] == "close"
    assert conn.closed()
    assert server.calls == ["/up"]


def test_handler_exception_is_500_without_its_text(
    server: Server, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="cellops.serving.http"):
        conn.send(get("/boom"))
        reply = conn.reply()
    assert reply is not None and reply.status == 500
    assert reply.json() == {"error": "internal error (logged by the server)"}
    assert b"secret" not in reply.body
    assert any("secret detail" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    conn.send(get("/still-open"))  # a handler failing is not the client's fault
    after = conn.reply()
    assert after is not None and after.status == 200


# -- slow and greedy clients -------------------------------------------------------------------------


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_partial_head_is_closed_after_the_head_timeout(server: Server, conn: Conn) -> None:
    conn.send(b"GET /slow HTTP/1.1\r\nHost: test\r\n")  # and never the blank line
    started = time.monotonic()
    reply = conn.reply()
    assert reply is not None and reply.status == 408
    assert HEAD_TIMEOUT * 0.9 <= time.monotonic() - started < HEAD_TIMEOUT + 3
    assert conn.closed()
    assert server.calls == []


def test_a_trickled_body_is_closed_once_it_falls_below_the_minimum_rate(
    server: Server, conn: Conn
) -> None:
    """Slow-loris on the body: a head sent at once, then a byte now and then."""
    conn.send(post(b"", "Content-Length: 100000"))
    started = time.monotonic()
    for _ in range(40):  # 20 bytes a second, for 2 s at most
        if select.select([conn.sock], [], [], 0.05)[0]:
            break  # the answer is there
        conn.send(b"x")
    reply = conn.reply()
    assert reply is not None and reply.status == 408, reply
    assert "bytes a second" in reply.json()["error"]
    assert HEAD_TIMEOUT * 0.9 <= time.monotonic() - started < HEAD_TIMEOUT + 3
    assert conn.closed()
    assert server.calls == []


def test_a_slow_body_above_the_minimum_rate_is_answered(server: Server, conn: Conn) -> None:
    body = b"y" * (MIN_BODY_RATE * 2)
    conn.send(post(b"", f"Content-Length: {2 * len(body)}") + body)
    assert conn.after(HEAD_TIMEOUT * 2) is None  # past the head timeout: the rate earned more
    conn.send(body)
    reply = conn.reply()
    assert reply is not None and reply.status == 200, reply
    assert server.calls == ["/echo"]


def test_a_body_awaiting_100_continue_is_not_timed_before_the_100(
    server: Server, conn: Conn
) -> None:
    conn.send(get("/hold") + post(b"", "Content-Length: 5", "Expect: 100-continue"))
    wait_for(lambda: server.calls == ["/hold"])
    time.sleep(HEAD_TIMEOUT * 2)  # the 100 is owed while /hold runs: the client may not send
    server.release()
    first = conn.reply()  # (not in an assert: pytest may evaluate a walrus there twice)
    assert first is not None and first.status == 200
    assert conn.readline() == b"HTTP/1.1 100 Continue\r\n"
    assert conn.readline() == b"\r\n"
    conn.send(b"hello")
    reply = conn.reply()
    assert reply is not None and reply.status == 200 and reply.json()["body"] == "hello"


def test_silent_connection_is_closed_but_idle_keep_alive_is_not(server: Server) -> None:
    silent = Conn(server)
    reply = silent.reply()
    assert reply is not None and reply.status == 408
    silent.close()

    idle = Conn(server)
    idle.send(get("/one"))
    assert (reply := idle.reply()) is not None and reply.status == 200
    assert idle.after(HEAD_TIMEOUT * 3) is None, "an idle keep-alive connection was closed"
    idle.send(get("/two"))
    assert (reply := idle.reply()) is not None and reply.json()["path"] == "/two"
    idle.close()


def test_pipelining_without_reading_pauses_reading_then_answers_all(
    server: Server, conn: Conn
) -> None:
    count = 10_000  # more than one 256 KiB read of requests
    conn.send(get("/hold") + b"".join(get(f"/p{i}") for i in range(count)))
    wait_for(lambda: server.calls and server.protocols[0].paused)
    assert server.calls == ["/hold"]  # one at a time: nothing else ran while /hold waits
    assert len(server.protocols[0].queue) < count  # the rest waits in the socket, unparsed
    server.release()
    paths = [(r := conn.reply()) and r.json()["path"] for _ in range(count + 1)]
    assert paths == ["/hold"] + [f"/p{i}" for i in range(count)]
