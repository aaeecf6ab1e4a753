from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import Execution, Page
from .base import ApiHandler
from .openapi import NOTEBOOK_IDENTITY, operation, query


class ExecutionsHandler(ApiHandler):
    @operation(
        "Executions of a notebook (or of one of its cells) across its runs, newest first",
        Page[Execution],
        params=[query.notebook, *NOTEBOOK_IDENTITY, query.cell, query.cursor, query.limit],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.store.list_notebook_executions,
            await self.notebook_ref(),
            self.get_query_argument("cursor", None),
            self.query_limit(default=100),
            cell=self.get_query_argument("cell", None),
        )
        self.write_json(page)


class ExecutionHandler(ApiHandler):
    @operation("One execution: code, status, timing, outputs, error", Execution)
    @authorized
    async def get(self, execution_id: str) -> None:
        self.write_json(
            await self.call(self.store.get_execution, self.id_arg(execution_id, "execution id"))
        )
