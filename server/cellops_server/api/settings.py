from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..capture.policy import TrackingPolicy
from ..schemas import TrackingSettings
from .base import ApiError, ApiHandler
from .openapi import operation


class SettingsHandler(ApiHandler):
    """What this Jupyter server records. The server is the one source of truth: JupyterLab
    shows these values in its settings editor and PUTs the user's changes here."""

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
        "Change the tracking settings (kept across restarts; open pages get a settings event)",
        TrackingSettings,
        body=TrackingSettings,
    )
    @authorized
    async def put(self) -> None:
        wanted = await self.body_as(TrackingSettings)
        changed = wanted != self.policy.settings
        answer = await self.call(self.policy.update, wanted)
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if changed and hub is not None:
            # Only a real change is announced: a page writing back what it was told stays quiet.
            hub.publish_settings()
        self.write_json(answer)
