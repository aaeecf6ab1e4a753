"""The one route table of /cellops/api/v1, and how it is mounted in each mode.

- embedded: a Jupyter server with its own store serves every route.
- team-client: a Jupyter server pointed at a team backend forwards every route to
  it, except those in LOCAL_ONLY (they act on this server's files or state), its
  status, and events (relayed from the backend by one long poll: team/relay.py).
- team-backend: ``cellops serve`` serves every route except LOCAL_ONLY ones,
  plus TEAM_ONLY (ingest from the Jupyter servers).
"""

from __future__ import annotations

from typing import Any

from .artifacts import ArtifactHandler
from .base import ApiHandler
from .blobs import BlobHandler
from .comments import CommentCountsHandler, CommentHandler, CommentsHandler
from .deployments import (
    DeploymentEventsHandler,
    DeploymentHandler,
    DeploymentKeyHandler,
    DeploymentMetricsHandler,
    DeploymentsHandler,
)
from .drift import DeploymentDriftHandler
from .events import EventsHandler
from .executions import ExecutionHandler, ExecutionsHandler
from .ingest import IngestHandler
from .logs import ExecutionLogsHandler, LogsHandler
from .models import (
    ModelAliasHandler,
    ModelHandler,
    ModelsHandler,
    ModelVersionHandler,
    ModelVersionNotebookHandler,
    ModelVersionsHandler,
)
from .notebooks import NotebookCellsHandler, NotebooksHandler
from .openapi import OpenApiHandler, build_document
from .promotions import PromotionsHandler
from .reviews import PolicyHandler, PromotionChecksHandler, ReviewRequestsHandler, ReviewsHandler
from .runs import RunExecutionsHandler, RunHandler, RunsHandler
from .settings import SettingsHandler
from .status import KernelBacklogHandler, NotFoundHandler, StatusHandler
from .team_activity import (
    ActivityHandler,
    InboxHandler,
    InboxReadHandler,
    MeHandler,
    UsersHandler,
)
from .versions import VersionDiffHandler, VersionHandler, VersionRestoreHandler, VersionsHandler
from .webhooks import (
    WebhookDeliveriesHandler,
    WebhookHandler,
    WebhooksHandler,
    WebhookTestHandler,
)

API_PREFIX = "/cellops/api/v1"

ROUTES: list[tuple[str, type[ApiHandler]]] = [
    (r"/status", StatusHandler),
    (r"/status/kernels", KernelBacklogHandler),
    (r"/openapi.json", OpenApiHandler),
    (r"/settings", SettingsHandler),
    (r"/events", EventsHandler),
    (r"/notebooks", NotebooksHandler),
    (r"/notebooks/([^/]+)/cells", NotebookCellsHandler),
    (r"/runs", RunsHandler),
    # Ids are matched as any segment: a non-number gets a 400 saying so (base.id_arg), not a 404.
    (r"/runs/([^/]+)", RunHandler),
    (r"/runs/([^/]+)/executions", RunExecutionsHandler),
    (r"/executions", ExecutionsHandler),
    (r"/executions/([^/]+)", ExecutionHandler),
    (r"/versions", VersionsHandler),
    (r"/versions/([^/]+)", VersionHandler),
    (r"/versions/([^/]+)/diff/([^/]+)", VersionDiffHandler),
    (r"/versions/([^/]+)/restore", VersionRestoreHandler),
    (r"/blobs/([0-9a-f]{64})", BlobHandler),
    (r"/ingest", IngestHandler),
    (r"/logs", LogsHandler),
    (r"/executions/([^/]+)/logs", ExecutionLogsHandler),
    (r"/artifacts/([0-9a-f]{64})", ArtifactHandler),
    (r"/models", ModelsHandler),
    # Names are matched loosely so that a bad one gets a 400 saying what is allowed, not a 404.
    (r"/models/([^/]+)", ModelHandler),
    (r"/models/([^/]+)/versions", ModelVersionsHandler),
    (r"/models/([^/]+)/versions/([^/]+)", ModelVersionHandler),
    (r"/models/([^/]+)/versions/([^/]+)/notebook", ModelVersionNotebookHandler),
    (r"/models/([^/]+)/aliases/([^/]+)", ModelAliasHandler),
    (r"/models/([^/]+)/policy", PolicyHandler),
    (r"/models/([^/]+)/versions/([^/]+)/review-requests", ReviewRequestsHandler),
    (r"/models/([^/]+)/versions/([^/]+)/reviews", ReviewsHandler),
    (r"/models/([^/]+)/versions/([^/]+)/promotion", PromotionChecksHandler),
    (r"/models/([^/]+)/promotions", PromotionsHandler),
    (r"/me", MeHandler),
    (r"/users", UsersHandler),
    (r"/comments", CommentsHandler),
    (r"/comments/counts", CommentCountsHandler),
    (r"/comments/([^/]+)", CommentHandler),
    (r"/activity", ActivityHandler),
    (r"/inbox", InboxHandler),
    (r"/inbox/read", InboxReadHandler),
    (r"/deployments", DeploymentsHandler),
    (r"/deployments/([^/]+)", DeploymentHandler),
    (r"/deployments/([^/]+)/events", DeploymentEventsHandler),
    (r"/deployments/([^/]+)/metrics", DeploymentMetricsHandler),
    (r"/deployments/([^/]+)/key", DeploymentKeyHandler),
    (r"/deployments/([^/]+)/drift", DeploymentDriftHandler),
    (r"/webhooks", WebhooksHandler),
    (r"/webhooks/([^/]+)", WebhookHandler),
    (r"/webhooks/([^/]+)/test", WebhookTestHandler),
    (r"/webhooks/([^/]+)/deliveries", WebhookDeliveriesHandler),
]

LOCAL_ONLY: set[type[ApiHandler]] = {VersionRestoreHandler, SettingsHandler, KernelBacklogHandler}
TEAM_ONLY: set[type[ApiHandler]] = {IngestHandler}


def openapi_document() -> dict[str, Any]:
    return build_document(ROUTES)


def _bind(resource: type[ApiHandler], base: type[ApiHandler]) -> type[ApiHandler]:
    """The resource's methods on the mode's base handler (auth and request plumbing)."""
    return type(resource.__name__, (resource, base), {"__module__": resource.__module__})


def mount(
    base_url: str,
    base: type[ApiHandler],
    routes: list[tuple[str, type[ApiHandler]]],
    extra: list[tuple[str, type[ApiHandler]]] | None = None,
) -> list[tuple[str, Any]]:
    prefix = base_url.rstrip("/") + API_PREFIX
    handlers: list[tuple[str, Any]] = [(prefix + pattern, _bind(h, base)) for pattern, h in routes]
    handlers += [(prefix + pattern, h) for pattern, h in extra or []]
    handlers.append((prefix + r"/(.*)", _bind(NotFoundHandler, base)))
    return handlers


def embedded_handlers(base_url: str) -> list[tuple[str, Any]]:
    from .jupyter import JupyterApiHandler

    return mount(base_url, JupyterApiHandler, [r for r in ROUTES if r[1] not in TEAM_ONLY])


def team_client_handlers(base_url: str) -> list[tuple[str, Any]]:
    from ..team.forward import ForwardHandler
    from .jupyter import JupyterApiHandler

    # Events too: the server's one relay follows the backend for all its local long polls.
    local = [r for r in ROUTES if r[1] in LOCAL_ONLY or r[1] in (StatusHandler, EventsHandler)]
    return mount(base_url, JupyterApiHandler, local, extra=[(r"/(.*)", ForwardHandler)])


def team_backend_handlers() -> list[tuple[str, Any]]:
    from ..team.auth import TeamApiHandler

    return mount("/", TeamApiHandler, [r for r in ROUTES if r[1] not in LOCAL_ONLY])
