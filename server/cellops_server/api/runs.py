from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import Execution, Page, Run
from .base import ApiHandler
from .openapi import NOTEBOOK_IDENTITY, operation, query


class RunsHandler(ApiHandler):
    @operation(
        "List runs (kernel sessions), newest first",
        Page[Run],
        params=[query.notebook_optional, *NOTEBOOK_IDENTITY, query.cursor, query.limit],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.store.list_runs,
            await self.notebook_ref(required=False),
            self.get_query_argument("cursor", None),
            self.query_limit(),
        )
        self.write_json(page)


class RunHandler(ApiHandler):
    @operation("One run", Run)
    @authorized
    async def get(self, run_id: str) -> None:
        self.write_json(await self.call(self.store.get_run, self.id_arg(run_id, "run id")))


class RunExecutionsHandler(ApiHandler):
    @operation(
        "Executions of a run, in the order they were requested",
        Page[Execution],
        params=[query.cursor, query.limit],
    )
    @authorized
    async def get(self, run_id: str) -> None:
        page = await self.call(
            self.store.list_executions,
            self.id_arg(run_id, "run id"),
            self.get_query_argument("cursor", None),
            self.query_limit(default=100),
        )
        self.write_json(page)
