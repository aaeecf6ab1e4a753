from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import Notebook, NotebookCells, Page
from ..store.notebook_queries import NotebookFilter, list_team_notebooks, notebook_cells
from .base import ApiError, ApiHandler
from .openapi import Param, operation, query

MAX_OWNER = 256  # the owner column's length
MAX_SEARCH = 200

OWNER = Param(
    "owner",
    "Only this member's notebooks; `me` for the caller's own (in embedded mode every "
    "notebook is the user's).",
)
SEARCH = Param("q", "Only notebooks whose path contains this text (case-insensitive).")
VERSION = Param(
    "version",
    "Version number to show; the latest by default.",
    schema={"type": "integer", "minimum": 1, "maximum": 999_999_999},
)


class NotebooksHandler(ApiHandler):
    @operation(
        "List tracked notebooks (the whole team's), most recently active first",
        Page[Notebook],
        params=[OWNER, SEARCH, query.cursor, query.limit],
    )
    @authorized
    async def get(self) -> None:
        where = NotebookFilter(owner=self._owner(), search=self._text("q", MAX_SEARCH))
        page = await self.call(
            list_team_notebooks,
            self.store,
            where,
            self.get_query_argument("cursor", None),
            self.query_limit(),
        )
        self.write_json(page)

    def _owner(self) -> str | None:
        """The member ``?owner=`` names: ``me`` is the caller; in embedded mode there are no
        members, so ``me`` means every notebook."""
        owner = self._text("owner", MAX_OWNER)
        if owner != "me":
            return owner
        team_user = getattr(self, "team_user", None)
        return team_user.name if team_user is not None else None

    def _text(self, name: str, limit: int) -> str | None:
        value = self.get_query_argument(name, None)
        if not value:
            return None
        if len(value) > limit:
            raise ApiError(400, f"{name} must be at most {limit} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ApiError(400, f"{name} must not contain control characters")
        return value


class NotebookCellsHandler(ApiHandler):
    @operation(
        "A notebook's cells (code in order, each with its latest execution's status), read-only",
        NotebookCells,
        params=[VERSION],
    )
    @authorized
    async def get(self, notebook_id: str) -> None:
        number = self.query_int("version", None, 1, 999_999_999)
        self.write_json(
            await self.call(
                notebook_cells, self.store, self.id_arg(notebook_id, "notebook id"), number
            )
        )
