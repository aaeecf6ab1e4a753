"""Real servers and a real kernel websocket client for tests and benchmarks.

``JupyterServer`` starts ``jupyter server`` (or ``jupyter lab``) in a subprocess with
a token, a temporary root and its own cellops home; ``KernelClient`` speaks the
kernel websocket protocol — the v1 binary subprotocol JupyterLab uses, or the
legacy JSON one — exactly as a browser would.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests
import websocket
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

V1 = "v1.kernel.websocket.jupyter.org"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
    proc: subprocess.Popen[Any] | None = None,
) -> None:
    """Wait until ``url`` answers (any status below 500); fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2, headers=headers).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


class Api:
    """A tiny client of /cellops/api/v1 (and Jupyter's own REST API)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"token {token}"}

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(
            method, f"{self.base}/{path.lstrip('/')}", headers=self.headers, timeout=30, **kw
        )

    def get(self, path: str, **params: Any) -> Any:
        r = self.request("GET", path, params=params)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def put_artifact(self, data: bytes, sha: str | None = None) -> requests.Response:
        """Upload a registry artifact (as the kernel library does: raw bytes, by sha256)."""
        sha = sha or hashlib.sha256(data).hexdigest()
        return requests.put(
            f"{self.base}/cellops/api/v1/artifacts/{sha}",
            data=data,
            headers={**self.headers, "Content-Type": "application/octet-stream"},
            timeout=30,
        )

    def cellops(self, path: str, **params: Any) -> Any:
        return self.get(f"cellops/api/v1/{path.lstrip('/')}", **params)

    def wait_for(self, path: str, predicate: Any, timeout: float = 20.0, **params: Any) -> Any:
        """Poll an endpoint until ``predicate(body)`` holds (the writer is asynchronous)."""
        deadline = time.monotonic() + timeout
        body = None
        while time.monotonic() < deadline:
            r = self.request("GET", f"cellops/api/v1/{path.lstrip('/')}", params=params)
            if r.status_code == 200:
                body = r.json()
                if predicate(body):
                    return body
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting on {path}; last answer: {json.dumps(body)[:2000]}")


class JupyterServer:
    def __init__(
        self,
        tmp: Path,
        *,
        app: str = "server",
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        cellops: bool = True,
        port: int | None = None,
    ) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.home = tmp / "cellops-home"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.token = uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.env = {**os.environ, "CELLOPS_HOME": str(self.home), **(env or {})}
        # The server imports tests.lab_checkpoints, whatever directory the tests run from.
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), self.env.get("PYTHONPATH", "")) if p
        )
        if "CELLOPS_DB_URL" not in (env or {}):  # the server's own home, unless a test says
            self.env.pop("CELLOPS_DB_URL", None)
        self.extra_args = extra_args or []
        self.cellops = cellops
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = Api(self.url, self.token)
        self.log_path = tmp / f"jupyter-{self.port}.log"

    def start(self) -> JupyterServer:
        extensions = "{'cellops_server': True}" if self.cellops else "{'cellops_server': False}"
        cmd = [
            sys.executable, "-m", "jupyter", self.app,
            "--allow-root", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--ServerApp.jpserver_extensions={extensions}",
            "--ServerApp.port_retries=0",
            "--AsyncContentsManager.checkpoints_class=tests.lab_checkpoints.ListingSurvivesAMove",
            *self.extra_args,
        ]  # fmt: skip
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{self.url}/api/status", headers=self.api.headers)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"jupyter did not start; log:\n{self.log_path.read_text()[-4000:]}"
            ) from None
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # SIGTERM, not SIGINT: a process started in the background (as CI may run the
            # suite) inherits an ignored SIGINT, and the server would sit out the 10 s.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._kill_kernels()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, nothing is flushed by the process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._kill_kernels()

    def _kill_kernels(self) -> None:
        # Kernels of a killed server are orphans; end them so tests leave nothing behind.
        subprocess.run(["pkill", "-f", f"{self.tmp}/.*kernel"], check=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # -- Jupyter REST -------------------------------------------------------------------

    def new_session(self, path: str = "analysis.ipynb", kernel: str = "python3") -> str:
        """Open a notebook session (as JupyterLab does); answers the kernel id."""
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)  # the kernel starts there
        r = self.api.request(
            "POST",
            "api/sessions",
            json={"path": path, "name": path, "type": "notebook", "kernel": {"name": kernel}},
        )
        assert r.status_code == 201, r.text
        return r.json()["kernel"]["id"]

    def restart(self, kernel_id: str) -> None:
        """Restart a kernel and wait until it is ready, as JupyterLab does before running."""
        r = self.api.request("POST", f"api/kernels/{kernel_id}/restart")
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while self.api.get(f"api/kernels/{kernel_id}")["execution_state"] != "idle":
            assert time.monotonic() < deadline, "the kernel did not come back after a restart"
            time.sleep(0.1)

    def connect(self, kernel_id: str, protocol: str = V1) -> KernelClient:
        return KernelClient(self.url, self.token, kernel_id, protocol)


class KernelClient:
    """A browser-like kernel websocket client."""

    def __init__(self, base: str, token: str, kernel_id: str, protocol: str = V1) -> None:
        self.protocol = protocol
        self.session = uuid.uuid4().hex
        url = (
            base.replace("http", "ws", 1)
            + f"/api/kernels/{kernel_id}/channels?session_id={self.session}"
        )
        subprotocols = [V1] if protocol == V1 else None
        self.ws = websocket.create_connection(
            url, header=[f"Authorization: token {token}"], subprotocols=subprotocols, timeout=60
        )
        self.backlog: list[dict[str, Any]] = []

    def close(self) -> None:
        self.ws.close()

    def send_execute(
        self,
        code: str,
        cell_id: str | None = None,
        deleted: list[str] | None = None,
        silent: bool = False,
    ) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "test",
            "session": self.session,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "version": "5.3",
        }
        metadata: dict[str, Any] = {
            "deletedCells": deleted or [],
            "recordTiming": False,
            "trusted": True,
        }
        if cell_id is not None:
            metadata["cellId"] = cell_id
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        if self.protocol == V1:
            parts = [json.dumps(p).encode() for p in (header, {}, metadata, content)]
            self.ws.send_binary(serialize_msg_to_ws_v1(parts, "shell"))
        else:
            self.ws.send(
                json.dumps(
                    {
                        "channel": "shell",
                        "header": header,
                        "parent_header": {},
                        "metadata": metadata,
                        "content": content,
                    }
                )
            )
        return msg_id

    def recv(self) -> dict[str, Any]:
        raw = self.ws.recv()
        if isinstance(raw, bytes):
            if self.protocol == V1:
                channel, parts = deserialize_msg_from_ws_v1(raw)
                keys = ("header", "parent_header", "metadata", "content")
                msg = {k: json.loads(parts[i]) for i, k in enumerate(keys)}
                msg["channel"] = channel
                return msg
            raise AssertionError("binary message on the legacy protocol")
        return json.loads(raw)

    def wait(self, msg_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Collect the reply and outputs of one request (until its reply and idle)."""
        deadline = time.monotonic() + timeout
        reply, outputs, idle = None, [], False
        pool = [m for m in self.backlog if m.get("parent_header", {}).get("msg_id") == msg_id]
        self.backlog = [m for m in self.backlog if m not in pool]
        while not (reply and idle):
            if pool:
                msg = pool.pop(0)
            else:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no reply to {msg_id}")
                msg = self.recv()
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    self.backlog.append(msg)
                    continue
            kind = msg["header"]["msg_type"]
            if kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
            elif kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append({"type": kind, **msg["content"]})
        return {"msg_id": msg_id, "reply": reply, "outputs": outputs}

    def execute(
        self, code: str, cell_id: str | None = None, timeout: float = 60.0, **kw: Any
    ) -> dict[str, Any]:
        return self.wait(self.send_execute(code, cell_id, **kw), timeout)


@contextmanager
def running(server: JupyterServer) -> Iterator[JupyterServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cellops_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cellops_server.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def terminate(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server stops cleanly or is made to."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` in a thread of its own: a test process may already run an event
    loop in its main thread (Playwright's sync API keeps one for the browser tests)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class TeamBackend:
    """`cellops serve` in a subprocess."""

    def __init__(
        self,
        db_url: str,
        artifacts: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.db_url = db_url
        self.artifacts = artifacts
        self.extra_args = extra_args  # e.g. ("--serving-port", "8931")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = artifacts.parent / f"serve-{self.port}.log"

    def add_user(self, name: str, role: str = "editor") -> str:
        from cellops_server.store import create_engine, migrate
        from cellops_server.team.users import add_user

        engine = create_engine(self.db_url)
        try:
            migrate(engine)
            return add_user(engine, name, role)
        finally:
            engine.dispose()

    def start(self) -> TeamBackend:
        cmd = [
            sys.executable, "-m", "cellops_server.cli", "serve",
            "--db", self.db_url, "--artifacts", str(self.artifacts), "--port", str(self.port),
            *self.extra_args,
        ]  # fmt: skip
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{self.url}/cellops/api/v1/status", timeout=30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"cellops serve did not start:\n{self.log_path.read_text()[-3000:]}"
            ) from None
        return self

    def stop(self) -> None:
        if self.proc:
            terminate(self.proc)

    def api(self, token: str) -> Api:
        return Api(self.url, token)


# What `import cellops` reads to find a server: a zero-configuration test drops them all, so
# kernels see only what their Jupyter server tells them.
CELLOPS_CLIENT_ENV = ("CELLOPS_URL", "CELLOPS_TOKEN", "CELLOPS_SERVER_URL", "CELLOPS_SERVER_TOKEN")


@contextmanager
def zero_config_server(
    tmp: Path,
    db_url: str | None = None,
    drop: tuple[str, ...] = (),
    extra_args: list[str] | None = None,
) -> Iterator[JupyterServer]:
    """A Jupyter server with cellops (on ``db_url``, default its own SQLite) whose kernels
    get no cellops settings but the ones the extension gives them."""
    env = {"CELLOPS_DB_URL": db_url} if db_url else {}
    server = JupyterServer(tmp, env=env, extra_args=extra_args)
    for name in (*CELLOPS_CLIENT_ENV, *drop):
        server.env.pop(name, None)
    with running(server):
        yield server


def execute_headless(notebook: Any, **env: str) -> None:
    """Run ``notebook`` with nbclient in place; its kernel sees none of the cellops client
    variables of this process, only ``env`` (a script or CI run, not a Jupyter kernel)."""
    from nbclient import NotebookClient

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in saved.items() if k not in CELLOPS_CLIENT_ENV}, **env)
    try:
        NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
