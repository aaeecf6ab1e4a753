"""Writing a batch so that the records the store will not keep are set aside, never retried.

A batch is written in one transaction. Records the ingestor refuses (another member's, a
notebook over its limits) are set aside by ``Ingestor.reject``. When the store itself refuses
the batch because of some record's data (store/errors.py: a value PostgreSQL cannot hold, a
violated constraint), the batch is split in halves, each written in its own transaction,
down to the records at fault: about 2·log2(n) extra transactions per bad record, none on the
common path. An unreachable store raises, and the caller retries the whole batch later.

Set-aside records are kept in ``rejected_records`` with their reason and sender, logged, and
reported to the sender by their index in the batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from ..schemas import IngestResult, RejectedRecord
from .blobs import FileBlobStore
from .engine import write_transaction
from .errors import describe, is_record_error
from .ingest import Ingestor
from .records import RecordLike
from .tables import rejected_records

log = logging.getLogger("cellops.store")

MAX_REPORTED = 100  # rejections listed in one answer; the rest are counted and kept
MAX_REASON = 1000


@dataclass
class SetAside:
    index: int  # in the batch as sent
    record: RecordLike
    reason: str


def ingest_batch(
    engine: sa.Engine, blobs: FileBlobStore, records: Sequence[RecordLike], sender: str | None
) -> IngestResult:
    aside: list[SetAside] = []
    _write(engine, blobs, list(enumerate(records)), sender, aside)
    if aside:
        aside.sort(key=lambda a: a.index)
        _keep(engine, aside, sender)
        _log(aside, len(records), sender)
    return IngestResult(
        accepted=len(records) - len(aside),
        rejected=[RejectedRecord(index=a.index, reason=a.reason) for a in aside[:MAX_REPORTED]],
    )


def _write(
    engine: sa.Engine,
    blobs: FileBlobStore,
    batch: list[tuple[int, RecordLike]],
    sender: str | None,
    aside: list[SetAside],
) -> None:
    try:
        with write_transaction(engine) as conn:
            ingestor = Ingestor(conn, blobs, sender)
            ingestor.ingest([record for _, record in batch])
    except Exception as exc:
        if not is_record_error(exc):
            raise
        if len(batch) == 1:
            index, record = batch[0]
            aside.append(SetAside(index, record, f"the store cannot keep it: {describe(exc)}"))
            return
        half = len(batch) // 2
        _write(engine, blobs, batch[:half], sender, aside)
        _write(engine, blobs, batch[half:], sender, aside)
        return
    index_of = {id(record): index for index, record in batch}
    aside += [SetAside(index_of[id(r.record)], r.record, r.reason) for r in ingestor.rejected]


def _keep(engine: sa.Engine, aside: list[SetAside], sender: str | None) -> None:
    now = datetime.now(timezone.utc)
    with write_transaction(engine) as conn:
        conn.execute(
            rejected_records.insert(),
            [
                {
                    "at": now,
                    "sender": sender,
                    # Reasons may quote values: lone surrogates escaped, to be storable.
                    "reason": a.reason.encode("utf-8", "backslashreplace").decode()[:MAX_REASON],
                    # ensure_ascii: NULs and lone surrogates become \\u escapes, always storable
                    "record": json.dumps(a.record.model_dump(mode="json")),
                }
                for a in aside
            ],
        )


def _log(aside: list[SetAside], total: int, sender: str | None) -> None:
    shown = "; ".join(f"[{a.index}] {a.reason}" for a in aside[:5])
    more = f" (and {len(aside) - 5} more)" if len(aside) > 5 else ""
    log.warning(
        "cellops: set aside %d of %d records sent by %s: %s%s",
        len(aside),
        total,
        sender or "this server",
        shown,
        more,
    )
