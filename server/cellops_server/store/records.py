"""What the capture tap sends to a store: the wire types of ``POST /ingest``.

The tap writes these as plain JSON lines into the spool (cheap); they are validated
here, once, when a store ingests them.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import Self

from ..bounds import PositiveInt, StoredInt, StoredTime

ExecutionStatus = Literal["running", "ok", "error", "aborted"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Keys, ids and paths: a NUL in one is never meaningful and PostgreSQL cannot hold it.
    # Free text (code, outputs) keeps its NULs (store/escaping.py).
    identifiers: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _no_nul_in_identifiers(self) -> Self:
        for name in self.identifiers:
            value = getattr(self, name)  # a string, None, or a list of strings
            if value and "\x00" in (value if isinstance(value, str) else "".join(value)):
                raise ValueError(f"{name} must not contain NUL characters (\\x00)")
        return self


RunOutcome = Literal["ok", "error", "timeout"]


class CiRecord(BaseModel):
    """The CI job a headless run ran in (headless/ci.py), from the job's environment."""

    model_config = ConfigDict(extra="forbid")
    system: str = Field(max_length=64, description="github, gitlab, or ci (any other CI).")
    commit: str | None = Field(default=None, max_length=128)
    branch: str | None = Field(default=None, max_length=512)
    url: str | None = Field(default=None, max_length=2048, description="The job's web page.")


class RunRecord(_Record):
    """One kernel session on one notebook, as first seen (or updated) by a tap."""

    kind: Literal["run"] = "run"
    identifiers = (
        "key",
        "notebook",
        "kernel_id",
        "kernel_session",
        "user",
        "source",
        "instance",
        "repo",
        "repo_path",
    )
    key: str = Field(min_length=1, max_length=64, description="Unique id chosen by the tap.")
    notebook: str = Field(max_length=1024, description="Notebook path within its server.")
    kernel_id: str = Field(max_length=64)
    kernel_session: str | None = Field(default=None, max_length=128)
    user: str | None = Field(default=None, max_length=256)
    started_at: StoredTime
    ended_at: StoredTime | None = None
    git: dict[str, Any] | None = None
    kernel_spec: dict[str, Any] | None = None
    source: str = Field(max_length=64, description="Stable id of the recording server.")
    instance: str = Field(max_length=64, description="Id of the server process that recorded.")
    repo: str | None = Field(
        default=None, max_length=1024, description="Normalized git remote URL of the notebook."
    )
    repo_path: str | None = Field(
        default=None, max_length=1024, description="The notebook's path within that repository."
    )
    # A headless run (`cellops run`, headless/): its parameters, its CI job and how it ended.
    # An interactive run's records leave them out.
    origin: Literal["interactive", "headless"] = "interactive"
    parameters: dict[str, Any] | None = None
    ci: CiRecord | None = None
    outcome: RunOutcome | None = None


class ErrorInfo(BaseModel):
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = []


class ExecutionRecord(_Record):
    """The state of one execute_request; later records for the same msg_id replace it."""

    kind: Literal["execution"] = "execution"
    identifiers = ("msg_id", "run_key", "notebook", "cell_id", "deleted_cells")
    msg_id: str = Field(min_length=1, max_length=128)
    run_key: str = Field(min_length=1, max_length=64)
    notebook: str = Field(max_length=1024)
    seq: PositiveInt
    cell_id: str | None = Field(default=None, max_length=128)
    code: str
    deleted_cells: list[str] = []
    status: ExecutionStatus
    started_at: StoredTime
    finished_at: StoredTime | None = None
    execution_count: StoredInt | None = None
    error: ErrorInfo | None = None
    outputs: list[dict[str, Any]] = []


class RecoverRecord(_Record):
    """Written when a server starts: whatever its earlier processes left running is over."""

    kind: Literal["recover"] = "recover"
    identifiers = ("source", "instance")
    source: str = Field(max_length=64)
    instance: str = Field(max_length=64)
    at: StoredTime


class RenameRecord(_Record):
    """A notebook (or a folder of notebooks) was renamed: its history follows the file."""

    kind: Literal["rename"] = "rename"
    identifiers = ("from_path", "to_path")
    from_path: str = Field(min_length=1, max_length=1024)
    to_path: str = Field(min_length=1, max_length=1024)
    at: StoredTime


class CopyRecord(_Record):
    """A notebook was copied (Duplicate, Save as): the copy starts its own history, linked
    to the one it came from."""

    kind: Literal["copy"] = "copy"
    identifiers = ("from_path", "to_path")
    from_path: str = Field(min_length=1, max_length=1024)
    to_path: str = Field(min_length=1, max_length=1024)
    at: StoredTime


Record = Annotated[
    RunRecord | ExecutionRecord | RecoverRecord | RenameRecord | CopyRecord,
    Field(discriminator="kind"),
]


# A member's writer sends at most its batch size (1,000 by default, writer.py) per request.
MAX_RECORDS_PER_REQUEST = 10_000


class TooManyRecords(Exception):
    """A batch longer than MAX_RECORDS_PER_REQUEST, found before any record is validated.

    Not a ValueError: pydantic would wrap that into an error that repeats the whole input."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"at most {MAX_RECORDS_PER_REQUEST} records per request, not {count}: "
            "send them in smaller batches"
        )
        self.count = count


class IngestBatch(BaseModel):
    records: list[Record] = Field(max_length=MAX_RECORDS_PER_REQUEST)

    @model_validator(mode="before")
    @classmethod
    def _count_before_validating(cls, raw: Any) -> Any:
        records = raw.get("records") if isinstance(raw, dict) else None
        if isinstance(records, list) and len(records) > MAX_RECORDS_PER_REQUEST:
            raise TooManyRecords(len(records))
        return raw


RecordLike = RunRecord | ExecutionRecord | RecoverRecord | RenameRecord | CopyRecord
