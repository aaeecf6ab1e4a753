"""Drift of a deployment's sampled requests against the training data (monitoring/drift.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..monitoring.drift import Thresholds, check_deployment
from ..schemas import DeploymentDrift
from ..serving.names import check_deployment_name
from .base import ApiError, ApiHandler
from .openapi import Param, operation

MAX_WINDOW = 1440  # minutes, as the deployment's metrics
WINDOW = Param(
    "window",
    f"Minutes of sampled requests up to now (1-{MAX_WINDOW}, default 60).",
    schema={"type": "integer", "minimum": 1, "maximum": MAX_WINDOW},
)


class DeploymentDriftHandler(ApiHandler):
    auth_resource = "cellops.deployments"  # reading: every member

    @operation(
        "Drift per feature of the sampled requests of the last `window` minutes against the "
        "training reference of each served version (KS, PSI, Wasserstein; chi², PSI)",
        DeploymentDrift,
        params=[WINDOW],
    )
    @authorized
    async def get(self, name: str) -> None:
        try:
            check_deployment_name(name)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        window = self.query_int("window", 60, 1, MAX_WINDOW)
        assert window is not None  # it has a default
        thresholds = self.settings.get("cellops_drift_thresholds") or Thresholds()
        report, changed = await self.call(
            check_deployment, self.store.engine, name, window, thresholds
        )
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if changed and hub is not None:
            hub.publish_deployments([name])  # its verdict (Deployment.drifted) changed
            hub.publish_activity()  # the feed shows deployment.drift_started
        self.write_json(report)
