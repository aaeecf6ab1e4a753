from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..registry import ExecutionLogStore
from ..schemas import ExecutionLogs, LogBatch, LogsAccepted
from .base import ApiHandler
from .openapi import operation


class LogsHandler(ApiHandler):
    """The kernel library posts what a cell logs; kept by the cell's execute_request msg_id."""

    @operation(
        "Log params, metrics and tags of the cell whose execute_request is msg_id",
        LogsAccepted,
        body=LogBatch,
        status=201,
    )
    @authorized
    async def post(self) -> None:
        batch = await self.body_as(LogBatch)
        team_user = getattr(self, "team_user", None)  # owners are checked in team mode
        accepted = await self.call(
            ExecutionLogStore(self.store).add, batch, team_user.name if team_user else None
        )
        self.write_json(LogsAccepted(accepted=accepted), status=201)


class ExecutionLogsHandler(ApiHandler):
    @operation("Params, metrics (every value) and tags logged by an execution", ExecutionLogs)
    @authorized
    async def get(self, execution_id: str) -> None:
        logs = await self.call(
            ExecutionLogStore(self.store).for_execution, self.id_arg(execution_id, "execution id")
        )
        self.write_json(logs)
