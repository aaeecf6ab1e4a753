from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..store.blobs import BlobNotFound
from .base import ApiError, ApiHandler
from .openapi import operation


class BlobHandler(ApiHandler):
    @operation("Raw bytes of a stored output (e.g. an image), by sha256", None, binary=True)
    @authorized
    async def get(self, sha: str) -> None:
        try:
            data = await self.call(self.store.blobs.get, sha)
        except BlobNotFound:
            raise ApiError(404, f"no blob {sha}") from None
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", f'attachment; filename="{sha}"')
        self.set_header("Cache-Control", "private, max-age=31536000, immutable")
        self.finish(data)
