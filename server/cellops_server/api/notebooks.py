from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import Notebook, Page
from .base import ApiHandler
from .openapi import operation, query


class NotebooksHandler(ApiHandler):
    @operation(
        "List tracked notebooks, most recently active first",
        Page[Notebook],
        params=[query.cursor, query.limit],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.store.list_notebooks, self.get_query_argument("cursor", None), self.query_limit()
        )
        self.write_json(page)
