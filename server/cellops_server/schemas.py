"""Response and request bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(description="Opaque cursor for the next page; pass it as ?cursor=.")


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong and what to change.")
    detail: Any = None


class Notebook(BaseModel):
    path: str
    runs: int
    executions: int
    versions: int
    created_at: datetime
    last_activity_at: datetime


class Run(BaseModel):
    id: int
    notebook: str
    kernel_id: str
    user: str | None
    started_at: datetime
    ended_at: datetime | None
    git: dict[str, Any] | None = Field(
        description="commit, branch, dirty; null outside a repository"
    )
    kernel_spec: dict[str, Any] | None
    executions: int = Field(description="Number of executions recorded in this run.")
    errors: int = Field(description="Executions that ended with an error.")


class ExecutionError(BaseModel):
    ename: str
    evalue: str
    traceback: list[str]


class Execution(BaseModel):
    id: int
    run_id: int
    notebook: str
    seq: int = Field(description="1, 2, 3… in the order the run received the requests.")
    msg_id: str
    cell_id: str | None
    code: str
    status: Literal["running", "ok", "error", "aborted"]
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    execution_count: int | None
    outputs: list[dict[str, Any]] = Field(
        description="Output digest: text cut at the configured size; binary data as "
        '{"blob": sha256, "size": n}, readable at /blobs/{sha256}.'
    )
    mime_types: list[str]
    error: ExecutionError | None
    version: int | None = Field(description="Notebook version number after this execution.")


class Version(BaseModel):
    id: int
    notebook: str
    number: int
    created_at: datetime
    execution_id: int | None
    cells: int


class LineChange(BaseModel):
    op: Literal["equal", "insert", "delete"]
    text: str


class CellChange(BaseModel):
    cell_id: str
    old: str
    new: str
    lines: list[LineChange]
    unified: str


class CellCode(BaseModel):
    cell_id: str
    code: str


class VersionDiff(BaseModel):
    notebook: str
    from_version: Version
    to_version: Version
    added: list[CellCode]
    removed: list[CellCode]
    changed: list[CellChange]
    unchanged: int


class RestoreRequest(BaseModel):
    path: str | None = Field(
        default=None, description="Where to save the copy; default <name>-v<N>.ipynb beside it."
    )


class RestoreResult(BaseModel):
    path: str


class IngestResult(BaseModel):
    accepted: int


class Status(BaseModel):
    version: str
    mode: Literal["embedded", "team-client", "team-backend"]
    tracking: bool = Field(description="Tracking is switched on for this server.")
    notebook_tracking: bool | None = Field(
        default=None,
        description="Whether executions of ?notebook= are recorded (false if tracking is off "
        "or the notebook matches an exclude pattern); null without ?notebook=.",
    )
    spool_pending: int = Field(description="Records waiting in the local spool.")
    backend_reachable: bool | None = None
    last_error: str | None = None


class TrackingSettings(BaseModel):
    """What a user chose in JupyterLab's settings; the server extension honours it."""

    model_config = ConfigDict(extra="forbid")

    tracking: bool = Field(default=True, description="Record executed cells.")
    exclude: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list,
        max_length=100,
        description="Notebooks not to record: glob patterns on the path relative to the server "
        "root, where * also matches across folders (scratch/*, *.tmp.ipynb).",
    )
    max_output_size: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Largest text stored per output, in characters; the rest is cut.",
    )


class ActivityEvent(BaseModel):
    seq: int
    type: Literal["executions", "reset"] = Field(
        description="executions: records of these notebooks were stored; reset: the server "
        "restarted or the client fell behind, so reload everything."
    )
    notebooks: list[str]
    at: datetime


class EventsReply(BaseModel):
    events: list[ActivityEvent]
    last: int = Field(description="Pass as ?after= on the next call.")
