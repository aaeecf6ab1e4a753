from __future__ import annotations

import posixpath
from datetime import datetime, timezone
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..schemas import Page, RestoreRequest, RestoreResult, Version, VersionDiff, VersionUpdate
from ..versions import restored_path
from .base import ApiError, ApiHandler
from .openapi import NOTEBOOK_IDENTITY, operation, query


class VersionsHandler(ApiHandler):
    @operation(
        "Numbered versions of a notebook's executed state, newest first",
        Page[Version],
        params=[query.notebook, *NOTEBOOK_IDENTITY, query.cursor, query.limit],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.store.list_versions,
            await self.notebook_ref(),
            self.get_query_argument("cursor", None),
            self.query_limit(),
        )
        self.write_json(page)


class VersionHandler(ApiHandler):
    @operation("A version as an nbformat 4 notebook (.ipynb JSON)", None, notebook=True)
    @authorized
    async def get(self, version_id: str) -> None:
        self.write_json(
            await self.call(self.store.version_notebook, self.id_arg(version_id, "version id"))
        )

    @operation(
        "Name and/or pin a version (only the notebook's owner, in team mode)",
        Version,
        body=VersionUpdate,
    )
    @authorized
    async def patch(self, version_id: str) -> None:
        vid = self.id_arg(version_id, "version id")
        body = await self.body_as(VersionUpdate)
        team_user = getattr(self, "team_user", None)  # owners are checked in team mode
        version = await self.call(
            self.store.update_version, vid, body, team_user.name if team_user else None
        )
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is not None:  # the notebook's sidebars refetch its versions
            hub.publish([version.notebook])
        self.write_json(version)


class VersionDiffHandler(ApiHandler):
    @operation(
        "Cells added, removed and changed (line by line) from version a to version b", VersionDiff
    )
    @authorized
    async def get(self, a: str, b: str) -> None:
        self.write_json(
            await self.call(
                self.store.diff_versions, self.id_arg(a, "version id"), self.id_arg(b, "version id")
            )
        )


class VersionRestoreHandler(ApiHandler):
    """Writes a version as a new notebook, through the contents manager.

    Without a path it goes beside the original, or into the root folder when the
    original's folder is not on this server (a teammate's ``team/sub/nb.ipynb``): a
    restore never creates folders. A path the client chooses must be in a folder that
    exists; otherwise the answer is 400, with the path a restore without one would take.
    """

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
        request = await self.body_as(RestoreRequest)
        notebook = await self.version_notebook(self.id_arg(version_id, "version id"))
        meta = notebook.setdefault("metadata", {}).setdefault("cellops", {})
        meta["restored_from"] = restored_from(meta)
        if request.path is None:
            path = await _default_path(contents, meta)
        else:
            path = await _chosen_path(contents, request.path, meta)
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


async def _chosen_path(contents: Any, requested: str, meta: dict[str, Any]) -> str:
    path = requested.strip("/")
    if not path.endswith(".ipynb"):
        raise ApiError(400, "path must end with .ipynb")
    folder = posixpath.dirname(path)
    if not await _folder_exists(contents, folder):
        raise ApiError(
            400,
            f"could not save {path}: there is no folder {folder!r} here; create it first "
            "or choose a path in an existing folder",
            {"missing_folder": folder, "suggested_path": await _default_path(contents, meta)},
        )
    if await ensure_async(contents.file_exists(path)):
        raise ApiError(409, f"{path} already exists; choose another path")
    return path


async def _default_path(contents: Any, meta: dict[str, Any]) -> str:
    """``<name>-v<N>.ipynb`` beside the original, or in the root if its folder is not here."""
    original = str(meta.get("notebook") or "notebook.ipynb").strip("/")
    if not await _folder_exists(contents, posixpath.dirname(original)):
        original = posixpath.basename(original)
    taken = await _names_in(contents, posixpath.dirname(original))
    return restored_path(original, int(meta.get("version", 0)), taken.__contains__)


async def _folder_exists(contents: Any, folder: str) -> bool:
    try:
        return bool(await ensure_async(contents.dir_exists(folder)))
    except Exception:  # outside the root, say: not a folder anything can be restored into
        return False


async def _names_in(contents: Any, folder: str) -> set[str]:
    """Paths already taken in ``folder``."""
    try:
        model = await ensure_async(contents.get(folder, content=True, type="directory"))
    except Exception:
        return set()
    return {item["path"] for item in model.get("content") or []}


def restored_from(meta: dict[str, Any]) -> dict[str, Any]:
    """Where a restored notebook came from (its ``cellops.restored_from`` metadata)."""
    return {
        "path": meta.get("notebook"),
        "version": meta.get("version"),
        "version_id": meta.get("version_id"),
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
