from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import IngestResult
from ..store.records import IngestBatch
from .base import ApiHandler
from .openapi import operation


class IngestHandler(ApiHandler):
    """Team backend only: Jupyter servers send their tracking records here."""

    @operation("Store a batch of tracking records (idempotent)", IngestResult, body=IngestBatch)
    @authorized
    async def post(self) -> None:
        batch = self.body_as(IngestBatch)
        team_user = getattr(self, "team_user", None)
        if team_user is not None:  # runs belong to the token's owner, not the sender's local name
            for record in batch.records:
                if record.kind == "run":
                    record.user = team_user.name
        accepted = await self.call(self.store.ingest, batch.records)
        hub = self.settings.get("cellops_activity")
        if hub is not None:
            hub.publish(
                getattr(r, "notebook", None) or getattr(r, "to_path", None) for r in batch.records
            )
        self.write_json(IngestResult(accepted=accepted))
