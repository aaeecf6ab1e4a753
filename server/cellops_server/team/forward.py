"""A Jupyter server in team mode: its /cellops/api/v1 forwards to the team backend.

The browser talks to its own Jupyter server (same origin, Jupyter's auth); that
server calls the backend with the user's personal token.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..api.base import ApiError
from ..api.jupyter import JupyterApiHandler

HOP_HEADERS = {"content-type", "cache-control"}


class BackendClient:
    def __init__(self, backend_url: str, token: str, timeout: float = 30.0) -> None:
        self.api = backend_url.rstrip("/") + "/cellops/api/v1/"
        self.token = token
        self.timeout = timeout
        # Our own client: every open sidebar holds one long poll (GET /events) here, and the
        # shared default client would queue other requests behind ten of them.
        self._http = AsyncHTTPClient(force_instance=True, max_clients=100)

    async def fetch(self, path: str, method: str = "GET", body: bytes | None = None) -> Any:
        request = HTTPRequest(
            self.api + path,
            method=method,
            body=body if method in ("POST", "PUT", "PATCH") else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            request_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        try:
            return await self._http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise ApiError(502, f"team backend unreachable at {self.api}: {exc}") from None

    async def get_json(self, path: str) -> Any:
        response = await self.fetch(path)
        if response.code >= 400:
            try:
                body = json.loads(response.body)
            except ValueError:
                body = {"error": response.reason}
            raise ApiError(response.code, body.get("error") or response.reason, body.get("detail"))
        return json.loads(response.body)


class ForwardHandler(JupyterApiHandler):
    @property
    def backend(self) -> BackendClient:
        return self.settings["cellops_backend"]

    async def _forward(self, path: str) -> None:
        query = ("?" + self.request.query) if self.request.query else ""
        response = await self.backend.fetch(
            path + query, self.request.method or "GET", self.request.body
        )
        if response.code == 599:
            raise ApiError(502, f"team backend unreachable at {self.backend.api}: {response.error}")
        self.set_status(response.code)
        for name, value in response.headers.get_all():
            if name.lower() in HOP_HEADERS:
                self.set_header(name, value)
        self.finish(response.body)

    @authorized
    async def get(self, path: str) -> None:
        await self._forward(path)

    @authorized
    async def post(self, path: str) -> None:
        await self._forward(path)

    @authorized
    async def put(self, path: str) -> None:
        await self._forward(path)

    @authorized
    async def patch(self, path: str) -> None:
        await self._forward(path)

    @authorized
    async def delete(self, path: str) -> None:
        await self._forward(path)
