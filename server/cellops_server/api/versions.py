from __future__ import annotations

from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized

from ..schemas import Page, RestoreRequest, RestoreResult, Version, VersionDiff
from ..versions import restored_path
from .base import ApiError, ApiHandler
from .openapi import operation, query


class VersionsHandler(ApiHandler):
    @operation(
        "Numbered versions of a notebook's executed state, newest first",
        Page[Version],
        params=[query.notebook, query.cursor, query.limit],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.store.list_versions,
            self.required_query("notebook"),
            self.get_query_argument("cursor", None),
            self.query_limit(),
        )
        self.write_json(page)


class VersionHandler(ApiHandler):
    @operation("A version as an nbformat 4 notebook (.ipynb JSON)", None, notebook=True)
    @authorized
    async def get(self, version_id: str) -> None:
        self.write_json(await self.call(self.store.version_notebook, int(version_id)))


class VersionDiffHandler(ApiHandler):
    @operation(
        "Cells added, removed and changed (line by line) from version a to version b", VersionDiff
    )
    @authorized
    async def get(self, a: str, b: str) -> None:
        self.write_json(await self.call(self.store.diff_versions, int(a), int(b)))


class VersionRestoreHandler(ApiHandler):
    """Writes a version as a new notebook beside the original, through the contents manager."""

    @operation(
        "Restore a version as a new notebook file; answers its path",
        RestoreResult,
        body=RestoreRequest,
        status=201,
    )
    @authorized
    async def post(self, version_id: str) -> None:
        contents = self.settings.get("contents_manager")
        if contents is None:
            raise ApiError(
                400, "restore writes a notebook file: call it through your Jupyter server"
            )
        request = self.body_as(RestoreRequest)
        notebook = await self.version_notebook(int(version_id))
        meta = notebook.get("metadata", {}).get("cellops", {})
        if request.path is not None:
            path = request.path.strip("/")
            if not path.endswith(".ipynb"):
                raise ApiError(400, "path must end with .ipynb")
            if await ensure_async(contents.file_exists(path)):
                raise ApiError(409, f"{path} already exists; choose another path")
        else:
            existing = await self._existing(contents, meta.get("notebook", "notebook.ipynb"))
            path = restored_path(
                meta.get("notebook", "notebook.ipynb"),
                int(meta.get("version", 0)),
                existing.__contains__,
            )
        try:
            await ensure_async(
                contents.save({"type": "notebook", "format": "json", "content": notebook}, path)
            )
        except Exception as exc:  # the contents manager refuses paths outside its root, etc.
            status = getattr(exc, "status_code", 400)
            raise ApiError(
                status if 400 <= status < 500 else 400,
                f"could not save {path}: {getattr(exc, 'log_message', None) or exc}",
            ) from None
        self.write_json(RestoreResult(path=path), status=201)

    async def version_notebook(self, version_id: int) -> dict[str, Any]:
        backend = self.settings.get("cellops_backend")
        if backend is not None:
            return await backend.get_json(f"versions/{version_id}")
        return await self.call(self.store.version_notebook, version_id)

    async def _existing(self, contents: Any, original: str) -> set[str]:
        """Names already taken in the original's folder (a missing folder is created by save)."""
        folder = original.rsplit("/", 1)[0] if "/" in original else ""
        try:
            model = await ensure_async(contents.get(folder, content=True, type="directory"))
        except Exception:
            return set()
        return {item["path"] for item in model.get("content") or []}
