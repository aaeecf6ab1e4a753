from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import IngestResult
from ..store.records import MAX_RECORDS_PER_REQUEST, IngestBatch, TooManyRecords
from .base import ApiError, ApiHandler
from .openapi import operation


class IngestHandler(ApiHandler):
    """Team backend only: Jupyter servers send their tracking records here."""

    max_body = 64 * 1024 * 1024  # a writer's batch of records with their outputs

    @operation("Store a batch of tracking records (idempotent)", IngestResult, body=IngestBatch)
    @authorized
    async def post(self) -> None:
        try:
            batch = await self.body_as(IngestBatch)
        except TooManyRecords as exc:
            raise ApiError(
                400, str(exc), {"limit": MAX_RECORDS_PER_REQUEST, "records": exc.count}
            ) from None
        # Records belong to the token's owner, whatever user name they carry.
        team_user = getattr(self, "team_user", None)
        sender = team_user.name if team_user is not None else None
        result = await self.call(self.store.ingest, batch.records, sender)
        hub = self.settings.get("cellops_activity")
        if hub is not None:
            hub.publish(
                getattr(r, "notebook", None) or getattr(r, "to_path", None) for r in batch.records
            )
        self.write_json(result)
