"""`cellops serve`: the team backend, the same API on a standalone tornado server."""

from __future__ import annotations

import asyncio
import logging
import signal

from tornado import web
from tornado.httpserver import HTTPServer

from ..activity import ActivityHub
from ..api.artifacts import DEFAULT_MAX_ARTIFACT_SIZE
from ..api.routes import openapi_document, team_backend_handlers
from ..store import Store

log = logging.getLogger("cellops.serve")


def make_app(store: Store, max_artifact_size: int = DEFAULT_MAX_ARTIFACT_SIZE) -> web.Application:
    return web.Application(
        team_backend_handlers(),
        cellops_store=store,
        cellops_openapi=openapi_document(),
        cellops_activity=ActivityHub(),
        cellops_max_artifact_size=max_artifact_size,
        max_body_size=64 * 1024 * 1024,
    )


async def serve(
    store: Store, host: str, port: int, max_artifact_size: int = DEFAULT_MAX_ARTIFACT_SIZE
) -> None:
    # Artifact uploads are streamed and raise this per request; other bodies stay small.
    server = HTTPServer(
        make_app(store, max_artifact_size), max_body_size=64 * 1024 * 1024, xheaders=True
    )
    server.listen(port, host)
    log.info("cellops team backend on http://%s:%d/cellops/api/v1", host, port)
    print(f"cellops team backend listening on http://{host}:{port}/cellops/api/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()
    store.close()
