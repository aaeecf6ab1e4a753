from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from .. import __version__
from ..kernel_backlog import KernelBacklogs
from ..schemas import KernelBacklog, Status
from .base import ApiError, ApiHandler
from .openapi import operation, query


class StatusHandler(ApiHandler):
    @operation(
        "Is tracking on, and how many records wait in the spool",
        Status,
        params=[query.status_notebook],
    )
    @authorized
    async def get(self) -> None:
        self.write_json(current_status(self, self.get_query_argument("notebook", None)))


class KernelBacklogHandler(ApiHandler):
    """Where a kernel of this Jupyter server reports what it keeps while the backend is
    down (local only: a team backend has no kernels)."""

    @operation(
        "A kernel reports the records it keeps while the backend is down (0: all sent)",
        Status,
        body=KernelBacklog,
    )
    @authorized
    async def post(self) -> None:
        report = await self.body_as(KernelBacklog)
        kernel_backlogs(self).report(report.kernel, report.pending, report.error)
        self.write_json(current_status(self, None))


def current_status(handler: ApiHandler, notebook: str | None) -> Status:
    status = handler.settings.get("cellops_status")
    if status is None:
        return Status(version=__version__, mode="team-backend", tracking=False, spool_pending=0)
    answer = status(notebook)
    policy = handler.settings.get("cellops_policy")
    if notebook is not None and policy is not None:
        answer.excluded_by = policy.excluded_by(notebook)
    answer.kernel_pending, answer.kernel_error = kernel_backlogs(handler).summary()
    return answer


def kernel_backlogs(handler: ApiHandler) -> KernelBacklogs:
    # In memory on purpose: kernels re-report while they retry (kernel_backlog.py).
    return handler.settings.setdefault("cellops_kernel_backlogs", KernelBacklogs())


class NotFoundHandler(ApiHandler):
    """Any unknown path under the API: a JSON 404 (after authentication, like every route)."""

    @authorized
    async def get(self, *_: str) -> None:
        raise_not_found(self.request.path)

    post = put = patch = delete = get


def raise_not_found(path: str) -> None:
    raise ApiError(404, f"no such endpoint: {path}; see /cellops/api/v1/openapi.json")
