"""A Jupyter server in team mode: its /cellops/api/v1 forwards to the team backend.

The browser talks to its own Jupyter server (same origin, Jupyter's auth); that
server calls the backend with the user's personal token. Request bodies are
streamed in (spooled to disk past a few MiB) and artifact downloads are streamed
out, so a model artifact never has to fit in this server's memory.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable
from typing import IO, Any
from urllib.parse import quote, urlencode

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import httputil, web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..api.artifacts import DEFAULT_MAX_ARTIFACT_SIZE, SLACK
from ..api.base import ApiError
from ..api.jupyter import JupyterApiHandler
from ..api.routes import API_PREFIX
from ..api.streaming import announced_length

HOP_HEADERS = {"content-type", "cache-control"}
DOWNLOAD_HEADERS = HOP_HEADERS | {"content-disposition", "content-length", "x-content-type-options"}
BODILESS = (204, 304)
# Their ?notebook= is identity-aware; POST /comments?notebook=P too (a cell comment's target).
NOTEBOOK_QUERIES = {"runs", "versions", "executions", "comments", "comments/counts"}
IDENTITY_POSTS = {"comments"}
FORWARDED_HEADERS = ("Idempotency-Key",)
# RFC 3986 path characters (unreserved ones are always kept), and "%" to keep escapes as sent.
PATH_SAFE = "/%!$&'()*+,;=:@"
QUERY_SAFE = PATH_SAFE + "?"
JSON_BODY_LIMIT = 64 * 1024 * 1024
IN_MEMORY = 4 * 1024 * 1024
CHUNK = 1024 * 1024
TRANSFER_TIMEOUT = 3600.0  # artifact uploads and downloads may take a while

BodyProducer = Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]


class BackendClient:
    def __init__(self, backend_url: str, token: str, timeout: float = 30.0) -> None:
        self.api = backend_url.rstrip("/") + "/cellops/api/v1/"
        self.token = token
        self.timeout = timeout
        # Our own client: the shared default one queues requests behind ten slow ones (artifact
        # transfers; the events relay's long poll). Artifact downloads are streamed, so the
        # response size limit is only the backend's.
        self._http = AsyncHTTPClient(force_instance=True, max_clients=100, max_body_size=2**40)

    async def fetch(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        body_producer: BodyProducer | None = None,
        length: int | None = None,
        timeout: float | None = None,
        extra_headers: dict[str, str] | None = None,
        **stream: Any,
    ) -> Any:
        headers = {"Authorization": f"token {self.token}", "Content-Type": content_type}
        headers.update(extra_headers or {})
        if body_producer is not None:
            headers["Content-Length"] = str(length)
            body = None
            # Send the body only once the backend accepted the head: a refusal (401, 403,
            # 413) then arrives as an answer instead of a connection reset mid-upload.
            stream["expect_100_continue"] = True
        elif method in ("POST", "PUT", "PATCH"):
            body = body or b""
        else:
            body = None
        request = HTTPRequest(
            self.api + path,
            method=method,
            body=body,
            body_producer=body_producer,
            headers=headers,
            request_timeout=timeout or self.timeout,
            allow_nonstandard_methods=True,
            **stream,
        )
        try:
            return await self._http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise ApiError(502, f"team backend unreachable at {self.api}: {exc}") from None

    async def get_json(self, path: str, timeout: float | None = None) -> Any:
        """The backend's JSON answer; its error (4xx/5xx) raised as an ApiError."""
        response = await self.fetch(path, timeout=timeout)
        try:
            body = json.loads(response.body)
        except (TypeError, ValueError):
            body = None
        if response.code >= 400:
            error = body if isinstance(body, dict) else {}
            raise ApiError(
                response.code, error.get("error") or response.reason, error.get("detail")
            )
        if body is None:
            raise ApiError(502, f"the team backend answered {path} with something else than JSON")
        return body


@web.stream_request_body
class ForwardHandler(JupyterApiHandler):  # ApiHandler is a StreamingHandler
    max_body = None  # spooled and forwarded, up to _limit
    _spool: IO[bytes] | None = None
    _received = 0
    _limit = JSON_BODY_LIMIT

    @property
    def backend(self) -> BackendClient:
        return self.settings["cellops_backend"]

    async def accept_body(self) -> None:
        if self.request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return
        # The body streams in after prepare: authorize before accepting it.
        user = self.current_user
        if not user or not self.authorizer.is_authorized(self, user, "write", self.auth_resource):
            raise ApiError(403, f"you are not allowed to {self.request.method} here")
        if self._target().startswith("artifacts/"):
            self._limit = int(
                self.settings.get("cellops_max_artifact_size") or DEFAULT_MAX_ARTIFACT_SIZE
            )
        length = announced_length(self.request.headers)
        if length is not None and length > self._limit:
            raise ApiError(
                413, f"request body of {length} bytes is too large", {"limit": self._limit}
            )
        self.request.connection.set_max_body_size(self._limit + SLACK)
        self._spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115

    def receive(self, chunk: bytes) -> None:
        if self._spool is None:
            return
        self._received += len(chunk)
        if self._received > self._limit:
            self._close_spool()
            self.refuse_now(ApiError(413, "request body too large", {"limit": self._limit}))
            return
        self._spool.write(chunk)

    def on_finish(self) -> None:
        self._close_spool()

    def on_connection_close(self) -> None:
        self._close_spool()

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _target(self) -> str:
        """What follows /cellops/api/v1/ in the request, path and query exactly as the client
        sent them. Tornado hands handlers their path arguments percent-decoded: forwarding
        those turned %3F into a query, %23 into a fragment and dropped %0A, so the backend
        acted on another resource than the one the client named."""
        prefix = url_path_join(self.base_url, API_PREFIX) + "/"
        path = self.request.path
        if not path.startswith(prefix):  # the route matched, so only an odd base_url gets here
            raise ApiError(404, f"no such endpoint: {path}")
        target = _encoded(path[len(prefix) :], PATH_SAFE)
        if self.request.query:
            target += "?" + _encoded(self.request.query, QUERY_SAFE)
        return target

    async def _forward(self) -> None:
        if self._finished:  # answered 413 while the body streamed in
            return
        target = self._target()
        method = self.request.method or "GET"
        if method == "GET" and target.startswith("artifacts/"):
            await self._download(target)
            return
        if method == "GET" or (method == "POST" and target.split("?", 1)[0] in IDENTITY_POSTS):
            target += await self._notebook_identity(target)
        kwargs: dict[str, Any] = {}
        # Headers with meaning for the backend's answer: a retried registration is one version.
        passed = {
            n: self.request.headers[n] for n in FORWARDED_HEADERS if n in self.request.headers
        }
        if passed:
            kwargs["extra_headers"] = passed
        body = None
        spool = self._spool
        if spool is not None:
            kwargs["content_type"] = self.request.headers.get("Content-Type", "application/json")
            size = spool.tell()
            spool.seek(0)
            if size <= IN_MEMORY:
                body = spool.read()
            else:
                kwargs.update(body_producer=_producer(spool), length=size, timeout=TRANSFER_TIMEOUT)
        response = await self.backend.fetch(target, method, body, **kwargs)
        if response.code == 599:
            raise ApiError(502, f"team backend unreachable at {self.backend.api}: {response.error}")
        self.set_status(response.code)
        for name, value in response.headers.get_all():
            if name.lower() in HOP_HEADERS:
                self.set_header(name, value)
        # Tornado refuses to send any body, even an empty one, with these statuses.
        self.finish(None if response.code in BODILESS else response.body)

    async def _notebook_identity(self, target: str) -> str:
        """Query parameters that tell the backend which notebook ``?notebook=`` means: this
        server knows whether the member's file is on its disk and in which git repository."""
        resource = target.split("?", 1)[0]
        local = self.settings.get("cellops_local_notebooks")
        path = self.get_query_argument("notebook", None)
        if resource not in NOTEBOOK_QUERIES or local is None or not path:
            return ""
        if {"owner", "repo", "own"} & set(self.request.query_arguments):
            return ""  # the client chose
        found = await local.look_up(path)
        extra = {**(found.repo or {}), **({"own": "1"} if found.exists else {})}
        return ("&" + urlencode(extra)) if extra else ""

    async def _download(self, path: str) -> None:
        """Stream the backend's answer through as it arrives."""
        status: list[int] = []
        headers = httputil.HTTPHeaders()

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                status.append(int(line.split(" ", 2)[1]))
                headers.clear()  # a 100 Continue comes before the real answer
            elif line.strip():
                headers.parse_line(line)

        def on_chunk(chunk: bytes) -> None:
            if not self._headers_written:
                self._start(status[-1], headers)
            self.write(chunk)
            self.flush()

        response = await self.backend.fetch(
            path,
            header_callback=on_header,
            streaming_callback=on_chunk,
            timeout=TRANSFER_TIMEOUT,
        )
        if response.code == 599 and not self._headers_written:
            raise ApiError(502, f"team backend unreachable at {self.backend.api}: {response.error}")
        if not self._headers_written:
            self._start(response.code, headers)
        self.finish()

    def _start(self, code: int, headers: httputil.HTTPHeaders) -> None:
        self.set_status(code)
        for name, value in headers.get_all():
            if name.lower() in DOWNLOAD_HEADERS:
                self.set_header(name, value)

    @authorized
    async def get(self, _path: str) -> None:
        await self._forward()

    @authorized
    async def post(self, _path: str) -> None:
        await self._forward()

    @authorized
    async def put(self, _path: str) -> None:
        await self._forward()

    @authorized
    async def patch(self, _path: str) -> None:
        await self._forward()

    @authorized
    async def delete(self, _path: str) -> None:
        await self._forward()


def _encoded(raw: str, safe: str) -> str:
    """``raw`` with its percent-escapes kept and anything a URL cannot carry escaped (tornado
    decoded the request line as Latin-1, so encoding back gives the bytes as received)."""
    return quote(raw.encode("latin-1"), safe=safe)


def _producer(spool: IO[bytes]) -> BodyProducer:
    async def produce(write: Callable[[bytes], Awaitable[None]]) -> None:
        while chunk := spool.read(CHUNK):
            await write(chunk)

    return produce
