"""What the capture tap sends to a store: the wire types of ``POST /ingest``.

The tap writes these as plain JSON lines into the spool (cheap); they are validated
here, once, when a store ingests them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ExecutionStatus = Literal["running", "ok", "error", "aborted"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRecord(_Record):
    """One kernel session on one notebook, as first seen (or updated) by a tap."""

    kind: Literal["run"] = "run"
    key: str = Field(min_length=1, max_length=64, description="Unique id chosen by the tap.")
    notebook: str = Field(max_length=1024, description="Notebook path within its server.")
    kernel_id: str = Field(max_length=64)
    kernel_session: str | None = Field(default=None, max_length=128)
    user: str | None = Field(default=None, max_length=256)
    started_at: datetime
    ended_at: datetime | None = None
    git: dict[str, Any] | None = None
    kernel_spec: dict[str, Any] | None = None
    source: str = Field(max_length=64, description="Stable id of the recording server.")
    instance: str = Field(max_length=64, description="Id of the server process that recorded.")


class ErrorInfo(BaseModel):
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = []


class ExecutionRecord(_Record):
    """The state of one execute_request; later records for the same msg_id replace it."""

    kind: Literal["execution"] = "execution"
    msg_id: str = Field(min_length=1, max_length=128)
    run_key: str = Field(min_length=1, max_length=64)
    notebook: str = Field(max_length=1024)
    seq: int = Field(ge=1)
    cell_id: str | None = Field(default=None, max_length=128)
    code: str
    deleted_cells: list[str] = []
    status: ExecutionStatus
    started_at: datetime
    finished_at: datetime | None = None
    execution_count: int | None = None
    error: ErrorInfo | None = None
    outputs: list[dict[str, Any]] = []


class RecoverRecord(_Record):
    """Written when a server starts: whatever its earlier processes left running is over."""

    kind: Literal["recover"] = "recover"
    source: str = Field(max_length=64)
    instance: str = Field(max_length=64)
    at: datetime


class RenameRecord(_Record):
    """A notebook (or a folder of notebooks) was renamed: its history follows the file."""

    kind: Literal["rename"] = "rename"
    from_path: str = Field(min_length=1, max_length=1024)
    to_path: str = Field(min_length=1, max_length=1024)
    at: datetime


Record = Annotated[
    RunRecord | ExecutionRecord | RecoverRecord | RenameRecord, Field(discriminator="kind")
]


class IngestBatch(BaseModel):
    records: list[Record] = Field(max_length=10_000)


RecordLike = RunRecord | ExecutionRecord | RecoverRecord | RenameRecord
