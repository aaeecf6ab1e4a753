"""A tiny receiver of cellops webhooks that verifies every signature.

    CELLOPS_WEBHOOK_SECRET=... python webhook_receiver.py --port 8787

Register it as an admin (`POST /cellops/api/v1/webhooks` with its URL, the events you want
and the same secret). A request is accepted only if `X-Cellops-Signature` is
`sha256=<hex HMAC-SHA256 of "<X-Cellops-Timestamp>.<body>">` with the secret, compared in
constant time, and its timestamp is at most five minutes old (a captured request cannot be
replayed later). Deliveries are at least once: the same `X-Cellops-Delivery` may arrive again
after a retry, so it is acted on once. Each accepted event is printed as one JSON line;
a rejected request gets 401 and is printed to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_AGE = 300  # seconds a signed request stays valid
MAX_BODY = 1 << 20


def signature_ok(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)


def fresh(timestamp: str, now: float) -> bool:
    return timestamp.isdigit() and abs(now - int(timestamp)) <= MAX_AGE


class Receiver(BaseHTTPRequestHandler):
    secret: bytes = b""
    seen: set[str] = set()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(413, "body too large")
        body = self.rfile.read(length)
        timestamp = self.headers.get("X-Cellops-Timestamp", "")
        signature = self.headers.get("X-Cellops-Signature", "")
        if not (
            fresh(timestamp, time.time()) and signature_ok(self.secret, timestamp, body, signature)
        ):
            print(
                f"rejected: bad or stale signature from {self.client_address[0]}", file=sys.stderr
            )
            return self._answer(401, "bad signature")
        delivery = self.headers.get("X-Cellops-Delivery", "")
        if delivery not in self.seen:  # a retry of a delivery already handled: answer ok only
            self.seen.add(delivery)
            event = json.loads(body)
            print(json.dumps({"delivery": delivery, **event}), flush=True)
        self._answer(200, "ok")

    def do_GET(self) -> None:  # a health check for whoever runs the receiver
        self._answer(200, "cellops webhook receiver: POST signed events here")

    def _answer(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one JSON line per event on stdout, nothing else


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Receive and verify cellops webhooks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    args = parser.parse_args(argv)
    secret = os.environ.get("CELLOPS_WEBHOOK_SECRET")
    if not secret:
        parser.error("set CELLOPS_WEBHOOK_SECRET to the secret the webhook was registered with")
    Receiver.secret = secret.encode()
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_port}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
