"""A real webhook receiver on 127.0.0.1 for tests and benchmarks: it records every request
(headers, body, when it arrived), answers 200, or 500 for the next ``fail`` requests, or a
redirect when told to, holds its answers while told to, and lets a test wait for what it
expects instead of sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cellops_server.webhooks.signing import verify


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float  # time.time() when it arrived

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return self.headers["X-Cellops-Event"]

    @property
    def delivery(self) -> str:
        return self.headers["X-Cellops-Delivery"]

    def signed_with(self, secret: str) -> bool:
        h = self.headers
        return verify(secret, h["X-Cellops-Timestamp"], self.body, h["X-Cellops-Signature"])


class Receiver:
    """``with Receiver() as r:`` serves on ``r.url`` until the block ends."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.fail = 0  # answer 500 to this many more requests
        self.status = 200  # the answer otherwise
        self.redirect_to: str | None = None  # answer 302 to this Location
        self._answering = threading.Event()  # cleared by hold(): answers wait for release()
        self._answering.set()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver._record(Received(self.path, dict(self.headers), body, time.time()))
                receiver._answering.wait(30)
                code, headers = receiver._answer()
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 drops bursts of connections (SYN retries)

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def hold(self) -> None:
        """Keep the answers to what arrives from now on until release()."""
        self._answering.clear()

    def release(self) -> None:
        self._answering.set()

    def _record(self, received: Received) -> None:
        with self._cond:
            self.requests.append(received)
            self._cond.notify_all()

    def _answer(self) -> tuple[int, dict[str, str]]:
        with self._cond:
            if self.fail > 0:
                self.fail -= 1
                return 500, {}
        if self.redirect_to:
            return 302, {"Location": self.redirect_to}
        return self.status, {}

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> list[Received]:
        """Wait until ``predicate(requests)`` holds; answer the requests."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(r.event, r.json.get("id")) for r in self.requests]
                    raise AssertionError(f"the receiver timed out; it got {seen}")
                self._cond.wait(left)
            return list(self.requests)

    def of(self, event: str) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.event == event]
