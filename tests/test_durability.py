"""SIGKILL the Jupyter server in the middle of a burst: nothing answered is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import websocket

from .support import JupyterServer


def test_sigkill_mid_burst_loses_no_answered_execution(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path).start()
    client = server.connect(server.new_session("burst.ipynb"))
    answered: list[str] = []
    stop = threading.Event()

    def burst() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                result = client.execute(f"n = {i}", cell_id=f"cell-{i % 7}", timeout=10)
            except (websocket.WebSocketException, OSError, TimeoutError):
                return  # the server died under us
            if result["reply"] and result["reply"]["status"] == "ok":
                answered.append(result["msg_id"])

    worker = threading.Thread(target=burst)
    worker.start()
    deadline = time.monotonic() + 30
    while len(answered) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL while executions are in flight
    stop.set()
    worker.join(15)
    assert len(answered) >= 150, f"only {len(answered)} executions answered before the kill"

    restarted = JupyterServer(tmp_path, port=server.port).start()  # same home: replays its spool
    try:
        run = restarted.api.wait_for("runs", lambda b: b["items"], notebook="burst.ipynb")["items"][
            0
        ]
        stored: dict[str, str] = {}

        def all_there(_: object) -> bool:
            stored.clear()
            cursor = None
            while True:
                params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                body = restarted.api.cellops(f"runs/{run['id']}/executions", **params)
                stored.update({e["msg_id"]: e["status"] for e in body["items"]})
                if not (cursor := body["next"]):
                    break
            return all(m in stored for m in answered)

        restarted.api.wait_for("status", all_there, timeout=30)
        assert all(stored[m] == "ok" for m in answered)
    finally:
        restarted.stop()
