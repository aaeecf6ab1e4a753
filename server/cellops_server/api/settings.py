from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..capture.policy import TrackingPolicy
from ..schemas import TrackingSettings
from .base import ApiError, ApiHandler
from .openapi import operation


class SettingsHandler(ApiHandler):
    """What this Jupyter server records: JupyterLab pushes the user's settings here."""

    @property
    def policy(self) -> TrackingPolicy:
        policy = self.settings.get("cellops_policy")
        if policy is None:
            raise ApiError(404, "tracking settings exist only on a Jupyter server")
        return policy

    @operation("Tracking settings this server honours", TrackingSettings)
    @authorized
    async def get(self) -> None:
        self.write_json(self.policy.settings)

    @operation(
        "Change the tracking settings (kept across restarts)",
        TrackingSettings,
        body=TrackingSettings,
    )
    @authorized
    async def put(self) -> None:
        wanted = await self.body_as(TrackingSettings)
        self.write_json(await self.call(self.policy.update, wanted))
