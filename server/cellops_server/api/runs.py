from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import Execution, Page, Run
from ..store.run_queries import RunQuery, parse_run_query
from .base import ApiError, ApiHandler
from .openapi import NOTEBOOK_IDENTITY, Param, operation, query

# Repeatable filters of GET /runs; a run's value is the latest its cells logged.
RUN_FILTERS = [
    Param(
        "metric",
        "Runs whose metric compares so: NAME OP NUMBER, OP one of > >= < <= = "
        "(e.g. accuracy>0.9). Repeat to combine (all must hold).",
    ),
    Param(
        "param",
        "Runs whose param has this value: NAME=VALUE (e.g. alpha=0.1; True, None, "
        "'quoted text' as in Python). Repeatable.",
    ),
    Param(
        "tag",
        "Runs with a tag named NAME or valued NAME (tag=baseline), or NAME=VALUE. Repeatable.",
    ),
    Param(
        "sort",
        "-started (default, newest first), started, metric:NAME (ascending) or "
        "-metric:NAME (descending); runs without that metric come last.",
    ),
]


class RunsHandler(ApiHandler):
    @operation(
        "List runs (kernel sessions), newest first",
        Page[Run],
        params=[
            query.notebook_optional,
            *NOTEBOOK_IDENTITY,
            *RUN_FILTERS,
            query.cursor,
            query.limit,
        ],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.store.list_runs,
            await self.notebook_ref(required=False),
            self.get_query_argument("cursor", None),
            self.query_limit(),
            self._run_query(),
        )
        self.write_json(page)

    def _run_query(self) -> RunQuery:
        """The filters and sort of the query string; a 400 naming a malformed one."""
        try:
            return parse_run_query(
                self.get_query_arguments("metric"),
                self.get_query_arguments("param"),
                self.get_query_arguments("tag"),
                self.get_query_argument("sort", None),
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None


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
