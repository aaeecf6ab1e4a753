"""The cellops API served to the notebook's kernel while an embedded headless run lasts.

`import cellops` in the kernel finds its server from CELLOPS_SERVER_URL and
CELLOPS_SERVER_TOKEN, as under JupyterLab. Without a Jupyter server, ``cellops run``
mounts the same route table (api/routes.py) on an in-process tornado server bound to
127.0.0.1 on a free port, and authenticates a random token made for this run only. The
user running the command is the admin of their own store, as in embedded JupyterLab.

A deployment made in the notebook (`cellops.deploy`) is served as under JupyterLab, by a
serving listener on 127.0.0.1 (``serving_port``, or a free port while another listener holds
it) that the run starts with its first deploy and stops when it ends: the notebook can call
its endpoint (a smoke test of the model in a pipeline). The deployment stays in the store,
so the next JupyterLab on this store serves it again (deployments come back by themselves).
"""

from __future__ import annotations

import hmac
import secrets
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..activity import ActivityHub
from ..api.base import ApiError, ApiHandler
from ..api.routes import LOCAL_ONLY, ROUTES, TEAM_ONLY, mount, openapi_document
from ..author import os_user
from ..capture.environment import LocalNotebooks
from ..serving.supervisor import ServingSupervisor, monitoring_env
from ..store import Store


class OwnerAuthorizer:
    """The one user of an embedded store may do everything (as in embedded JupyterLab)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return True


class RunTokenAuthentication(web.RequestHandler):
    """Accepts this run's token only (``Authorization: token …``)."""

    async def prepare(self) -> None:  # type: ignore[override]
        auth = self.request.headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        expected = self.settings["cellops_run_token"]
        if scheme.lower() not in ("token", "bearer") or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise ApiError(401, "send this run's token: `Authorization: token <token>`")
        self.current_user = os_user() or "cellops"


class HeadlessApiHandler(ApiHandler, RunTokenAuthentication):
    authorizer = OwnerAuthorizer()


@dataclass
class LocalApi:
    """The listening server; ``url`` and ``token`` go to the kernel's environment."""

    server: HTTPServer
    url: str
    token: str
    serving: ServingSupervisor | None = None

    def stop(self) -> None:
        self.server.stop()
        if self.serving is not None:
            self.serving.stop()


def serve_api(
    store: Store, root: str, max_artifact_size: int, serving: ServingConfig | None = None
) -> LocalApi:
    """Listen on 127.0.0.1 (a free port) in the running event loop; with ``serving``, a
    deploy starts a serving listener (stopped with the API)."""
    token = secrets.token_hex(32)
    supervisor = wake = None
    if serving is not None:
        supervisor = serving.supervisor(store, token)
        wake = serving.wake(supervisor)
    routes = [r for r in ROUTES if r[1] not in TEAM_ONLY and r[1] not in LOCAL_ONLY]
    app = web.Application(
        mount("/", HeadlessApiHandler, routes),
        cellops_store=store,
        cellops_run_token=token,
        cellops_activity=ActivityHub(),
        cellops_openapi=openapi_document(),
        cellops_max_artifact_size=max_artifact_size,
        cellops_local_notebooks=LocalNotebooks(root),
        cellops_serving_url=supervisor.url if supervisor is not None else "",
        cellops_serving_wake=wake,
        max_body_size=64 * 1024 * 1024,
    )
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app, max_body_size=64 * 1024 * 1024)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    return LocalApi(server, f"http://127.0.0.1:{port}/", token, supervisor)


@dataclass(frozen=True)
class ServingConfig:
    """How deployments made during the run are served (config.py ``serving_*``)."""

    db_url: str
    artifacts_dir: str
    port: int
    workers: int
    monitoring: bool
    sample_rate: float
    samples_per_second: int

    def supervisor(self, store: Store, token: str) -> ServingSupervisor:
        env = monitoring_env(self.monitoring, self.sample_rate, self.samples_per_second)
        # The kernel's predict() without a deployment key authenticates with the run's token.
        env["CELLOPS_SERVING_MEMBER_TOKEN"] = token
        # Taken, most likely by a JupyterLab's serving listener on this machine: the run
        # serves on a port of its own instead of failing to bind at the first deploy.
        port = self.port if _can_listen(self.port) else _free_port()
        return ServingSupervisor(
            self.db_url, self.artifacts_dir, "127.0.0.1", port, self.workers, env
        )

    def wake(self, supervisor: ServingSupervisor) -> Callable[[], None]:
        """What a deploy calls: start the listener; the first time, say where it listens if
        that is not ``serving_port`` (so a run that never deploys says nothing)."""

        def wake() -> None:
            if supervisor.proc is None and supervisor.port != self.port:
                print(
                    f"cellops run: port {self.port} is in use (a JupyterLab serving deployments?);"
                    f" deployments made in this run are served on {supervisor.url} while it lasts",
                    file=sys.stderr,
                )
            supervisor.start()

        return wake


def _can_listen(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the router binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
