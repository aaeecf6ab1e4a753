"""Model artifacts over HTTP: streamed uploads verified by sha256, and downloads."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..registry import ArtifactStore, Upload
from ..registry.artifacts import TooLarge
from ..schemas import Artifact
from ..store.blobs import BlobNotFound
from .base import ApiError, ApiHandler
from .openapi import operation
from .streaming import announced_length

DEFAULT_MAX_ARTIFACT_SIZE = 2 * 1024**3
CHUNK = 1024 * 1024
# Tornado refuses (by closing the connection) a chunked body this far past the limit;
# our own check answers 413 first.
SLACK = 1024 * 1024


@web.stream_request_body
class ArtifactHandler(ApiHandler):  # ApiHandler is a StreamingHandler
    max_body = None  # streamed into the artifact store, up to max_size
    upload: Upload | None = None

    @property
    def max_size(self) -> int:
        return int(self.settings.get("cellops_max_artifact_size") or DEFAULT_MAX_ARTIFACT_SIZE)

    async def accept_body(self) -> None:
        if self.request.method != "PUT":
            return
        # The body is streamed after prepare, so authorize now rather than after the upload.
        user = self.current_user
        if not user or not self.authorizer.is_authorized(self, user, "write", self.auth_resource):
            raise ApiError(403, "you are not allowed to upload artifacts")
        limit = self.max_size
        length = announced_length(self.request.headers)
        if "Content-Length" in self.request.headers:
            if length is None:
                raise ApiError(400, "Content-Length must be a number of bytes")
            if length > limit:
                raise ApiError(
                    413,
                    f"artifact of {length} bytes is larger than this server's limit",
                    {"limit": limit},
                )
        self.request.connection.set_max_body_size(limit + SLACK)
        self.upload = await self.call(
            ArtifactStore(self.store.blobs).upload, self.path_args[0], limit
        )

    def receive(self, chunk: bytes) -> None:
        if self.upload is None:
            return
        try:
            self.upload.write(chunk)
        except TooLarge as exc:
            self.upload = None  # it discarded itself
            self.refuse_now(ApiError(413, str(exc), {"limit": self.max_size}))

    def on_connection_close(self) -> None:
        self._discard()

    def on_finish(self) -> None:
        self._discard()

    def _discard(self) -> None:
        if self.upload is not None:
            self.upload.discard()
            self.upload = None

    @operation(
        "Upload an artifact: the raw bytes (application/octet-stream) whose sha256 is the URL's; "
        "201 when new, 200 when already stored, 400 on a checksum mismatch, 413 over the limit",
        Artifact,
        status=201,
        raw_body=True,
    )
    @authorized
    async def put(self, sha: str) -> None:
        if self._finished:  # already answered 413 while streaming
            return
        upload = self.upload
        assert upload is not None
        created = await self.call(upload.finish)  # fsync + rename, off the event loop
        self.upload = None
        self.write_json(Artifact(sha256=sha, size=upload.size), status=201 if created else 200)

    @operation("An artifact's bytes, by sha256", None, binary=True)
    @authorized
    async def get(self, sha: str) -> None:
        try:
            path = ArtifactStore(self.store.blobs).path(sha)
        except BlobNotFound:
            raise ApiError(404, f"no artifact {sha}") from None
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", f'attachment; filename="{sha}"')
        self.set_header("Content-Length", str(path.stat().st_size))
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()
