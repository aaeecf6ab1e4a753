"""An inference worker: ``python -m cellops_server.serving.worker --fd N --artifacts DIR``.

Started by the router with one end of a socketpair (fd N). It holds models keyed by
(deployment, version), loads them through loading.py (sha256 verified, the server's
allow-list) and answers one request at a time with protocols.py. When the router goes
away the socket closes and the worker exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import traceback
from typing import Any

from .wire import read_frame, send_frame

Key = tuple[str, int]


class Worker:
    def __init__(self, sock: socket.socket, artifacts: str) -> None:
        self.sock = sock
        self.artifacts = artifacts
        self.models: dict[Key, tuple[Any, Any]] = {}  # key -> (model, signature)

    def run(self) -> None:
        from . import loading, protocols  # heavy imports (sklearn) after the fork/exec

        self.loading, self.protocols = loading, protocols
        _warm_up()
        send_frame(self.sock, {"op": "hello", "pid": os.getpid()})
        stream = self.sock.makefile("rb")
        while True:
            frame = read_frame(stream)
            if frame is None:
                return  # the router is gone
            header, body = frame
            reply, out = self.handle(header, body)
            reply["id"] = header.get("id")
            send_frame(self.sock, reply, out)

    def handle(self, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        op = header.get("op")
        key = (header.get("deployment", ""), int(header.get("version", 0)))
        if op == "infer":
            return self.infer(key, header, body)
        if op == "load":
            return self.load(key, header), b""
        if op == "unload":
            self.models.pop(key, None)
            return {"ok": True}, b""
        return {"ok": False, "error": f"unknown op {op!r}"}, b""

    def load(self, key: Key, header: dict[str, Any]) -> dict[str, Any]:
        signature = header.get("signature")
        try:
            model = self.loading.load_verified(self.artifacts, header["sha256"])
            self.loading.check_prediction(model, signature)
        except Exception as exc:  # a refused or broken model: the reason goes to the deployment
            return {"ok": False, "error": str(exc) or type(exc).__name__}
        self.models[key] = (model, signature)
        return {"ok": True}

    def infer(self, key: Key, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        held = self.models.get(key)
        if held is None:
            return _error(503, f"version {key[1]} of {key[0]} is not loaded here; retry"), b""
        model, signature = held
        request = self.protocols.InferenceRequest(
            protocol=header["protocol"],
            body=body,
            content_type=header.get("content_type") or "",
            deployment=key[0],
            version=key[1],
            signature=signature,
            header_length=header.get("header_length"),
            sample=bool(header.get("sample")),
        )
        try:
            result = self.protocols.infer(model, request)
        except Exception as exc:  # never let one request end the worker
            traceback.print_exc(file=sys.stderr)
            return _error(500, f"prediction failed: {type(exc).__name__}: {exc}"), b""
        out = result.body
        if isinstance(out, str):
            out = out.encode()
        elif not isinstance(out, (bytes, bytearray, memoryview)):
            out = json.dumps(out).encode()
        reply: dict[str, Any] = {
            "status": result.status,
            "rows": getattr(result, "rows", 0) or 0,
            "content_type": getattr(result, "content_type", None) or "application/json",
            "headers": dict(getattr(result, "headers", None) or {}),
        }
        if result.sample is not None:  # asked for: (input rows, predictions), JSON as they are
            reply["sample"] = result.sample
        return reply, bytes(out)


def _warm_up() -> None:
    """Import what loading a model needs (skops pulls in scikit-learn, scipy, pandas: seconds
    on a busy machine) before saying hello, so a load is only the model's own work."""
    import cellops.serialize  # noqa: F401
    import sklearn.base  # noqa: F401
    import skops.io  # noqa: F401


def _error(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "error": message}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cellops_server.serving.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the router decides when workers stop
    sock = socket.socket(fileno=args.fd)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        Worker(sock, args.artifacts).run()


if __name__ == "__main__":
    main()
