"""`cellops serve`: the team backend, the same API on a standalone tornado server."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import signal
import ssl

from tornado import web
from tornado.httpserver import HTTPServer

from ..activity import ActivityHub
from ..api.artifacts import DEFAULT_MAX_ARTIFACT_SIZE
from ..api.routes import openapi_document, team_backend_handlers
from ..monitoring.watch import DeploymentWatcher, DriftSettings
from ..serving.supervisor import ServingSupervisor
from ..store import Store
from ..webhooks.outbox import Settings as WebhookSettings
from ..webhooks.process import DispatcherProcess
from .notify import ReplicaEvents, postgres_dsn

log = logging.getLogger("cellops.serve")
access_log = logging.getLogger("cellops.serve.access")


class TLSConfigError(Exception):
    """The certificate or key given to `cellops serve` cannot be used."""


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server-side TLS context with Python's secure defaults (TLS 1.2+, no weak ciphers)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(
            f"cannot use the TLS certificate {certfile!r} with key {keyfile!r}: {exc}"
        ) from None
    return context


def log_request(handler: web.RequestHandler) -> None:
    """One access-log line per request; a refusal carries its reason on the same line."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    reason = getattr(handler, "refusal_reason", None)
    access_log.log(
        level,
        "%d %s %.2fms%s",
        status,
        handler._request_summary(),
        1000.0 * handler.request.request_time(),
        f": {reason}" if reason else "",
    )


class UnknownPath(web.RequestHandler):
    """Any path outside the API: a JSON 404 that says where the API is, not tornado's HTML."""

    def prepare(self) -> None:
        raise web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs: object) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        error = f"no endpoint at {self.request.path}; the API is under /cellops/api/v1/"
        self.finish(json.dumps({"error": error, "detail": None}))


def make_app(
    store: Store,
    max_artifact_size: int = DEFAULT_MAX_ARTIFACT_SIZE,
    hub: ActivityHub | None = None,
    serving: ServingSupervisor | None = None,
    serving_url: str = "",
    drift: DriftSettings | None = None,
    watcher: DeploymentWatcher | None = None,
    webhooks: WebhookSettings | None = None,
    dispatcher: DispatcherProcess | None = None,
) -> web.Application:
    def wake() -> None:  # a deploy: serve it (if this replica serves), watch it
        if serving is not None:
            serving.start()
        if watcher is not None:
            watcher.start()

    return web.Application(
        team_backend_handlers(),
        cellops_store=store,
        cellops_serving_url=serving_url,
        cellops_serving_wake=wake,
        cellops_drift_thresholds=(drift or DriftSettings()).thresholds,
        cellops_openapi=openapi_document(),
        cellops_activity=hub if hub is not None else ActivityHub(),
        cellops_max_artifact_size=max_artifact_size,
        cellops_webhook_settings=webhooks or WebhookSettings(),
        cellops_webhooks_wake=dispatcher.wake if dispatcher is not None else None,
        max_body_size=64 * 1024 * 1024,
        log_function=log_request,
        default_handler_class=UnknownPath,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def announce(host: str, port: int, tls: bool) -> None:
    scheme = "https" if tls else "http"
    everywhere = " (every interface)" if host in ("", "0.0.0.0", "::") else ""
    log.info(
        "cellops team backend listening on %s://%s:%d/cellops/api/v1%s",
        scheme,
        host or "0.0.0.0",
        port,
        everywhere,
    )
    if is_loopback(host):
        log.warning(
            "bound to %s only: members on other machines cannot reach it; pass "
            "--host 0.0.0.0 (every interface) or this machine's LAN address",
            host,
        )


async def _supervise(serving: ServingSupervisor) -> None:
    """The serving listener (deployments live in the store, so they come back with it)."""
    serving.start()
    while True:
        await asyncio.sleep(2)
        serving.ensure_running()


async def serve(
    store: Store,
    host: str,
    port: int,
    max_artifact_size: int = DEFAULT_MAX_ARTIFACT_SIZE,
    tls: ssl.SSLContext | None = None,
    serving: ServingSupervisor | None = None,
    serving_url: str = "",
    drift: DriftSettings | None = None,
    webhooks: WebhookSettings | None = None,
) -> None:
    hub = ActivityHub()
    # On PostgreSQL every replica's events reach every replica's long polls (team/notify.py).
    dsn = postgres_dsn(store.engine)
    replicas = ReplicaEvents(dsn, hub) if dsn else None
    if replicas is not None:
        await replicas.start()
    # Drift checked on its own and the router's state changes told, while deployments exist.
    watcher = DeploymentWatcher(store.engine, hub, drift or DriftSettings())
    watcher.start()
    # Webhooks delivered from the outbox in the store, by a process of their own (one
    # replica delivers on PostgreSQL).
    webhooks = webhooks or WebhookSettings()
    dispatcher = DispatcherProcess(
        store.engine.url.render_as_string(hide_password=False), hub, webhooks
    )
    dispatcher.start()
    # Artifact uploads are streamed and raise this per request; other bodies stay small.
    server = HTTPServer(
        make_app(
            store,
            max_artifact_size,
            hub,
            serving,
            serving_url,
            drift,
            watcher,
            webhooks,
            dispatcher,
        ),
        max_body_size=64 * 1024 * 1024,
        xheaders=True,
        ssl_options=tls,
    )
    server.listen(port, host)
    announce(host, port, tls is not None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.ensure_future(_supervise(serving)) if serving is not None else None
    await stop.wait()
    await dispatcher.stop()
    await watcher.stop()
    if watch is not None:
        watch.cancel()
        await asyncio.get_running_loop().run_in_executor(None, serving.stop)  # type: ignore[union-attr]
    server.stop()
    await server.close_all_connections()
    if replicas is not None:
        await replicas.stop()
    store.close()
