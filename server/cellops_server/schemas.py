"""Response and request bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .bounds import PositiveInt, StoredTime

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(description="Opaque cursor for the next page; pass it as ?cursor=.")


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong and what to change.")
    detail: Any = None


class Notebook(BaseModel):
    id: int
    path: str
    owner: str | None = Field(
        description="The member whose file it is; null for a git notebook (shared by everyone "
        "who opens that file of the repository) and in embedded mode."
    )
    repo: str | None = Field(description="Normalized git remote URL of a git notebook.")
    repo_path: str | None = Field(description="The notebook's path within that repository.")
    copied_from: str | None = Field(
        description="Path of the notebook this one was copied from (Duplicate, Save as)."
    )
    runs: int
    executions: int
    versions: int
    created_at: datetime
    last_activity_at: datetime


class NotebookCell(BaseModel):
    """One cell of a notebook version, with what its latest execution left (if any)."""

    cell_id: str
    code: str
    status: Literal["running", "ok", "error", "aborted"] | None = Field(
        description="Latest execution's status; null if never run."
    )
    execution_id: int | None
    execution_count: int | None
    finished_at: datetime | None
    error: str | None = Field(description="'ename: evalue' of the latest execution's error.")
    output_types: list[str] = Field(description="Output types and mime types it produced.")
    output_text: str | None = Field(description="The first text output, truncated.")


class NotebookCells(BaseModel):
    notebook: Notebook
    version: int | None = Field(description="The version shown; null if none was recorded.")
    cells: list[NotebookCell]


class CiInfo(BaseModel):
    """The CI job a headless run ran in, read from the job's environment."""

    system: str = Field(description="github, gitlab, or ci (another CI system).")
    commit: str | None = None
    branch: str | None = None
    url: str | None = Field(default=None, description="The job's web page, when known.")


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
    number: int = Field(
        default=0, description="1, 2, 3… among its notebook's runs, in start order."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Latest value of each metric its cells logged."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Latest value of each param its cells logged."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Latest value of each tag its cells set."
    )
    source: Literal["interactive", "headless"] = Field(
        default="interactive",
        description="interactive: a kernel in JupyterLab; headless: `cellops run`.",
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="A headless run's parameters (-p, --parameters-file)."
    )
    ci: CiInfo | None = Field(default=None, description="The CI job of a headless run.")
    outcome: str | None = Field(
        default=None,
        description="How a headless run ended: ok, error or timeout (null while it runs, "
        "and for interactive runs).",
    )


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


class VersionChanges(BaseModel):
    """What a version changed since the one before it (the first: every cell added)."""

    changed: int = Field(description="Cells whose code changed.")
    added: int = Field(description="Cells added.")
    removed: int = Field(description="Cells removed.")


class Version(BaseModel):
    id: int
    notebook: str
    number: int
    created_at: datetime
    execution_id: int | None
    cells: int
    changes: VersionChanges = Field(
        default=VersionChanges(changed=0, added=0, removed=0),
        description="Cells changed, added and removed since the version before.",
    )
    summary: str = Field(
        default="", description='The changes in words: "2 cells changed, 1 added".'
    )
    name: str | None = Field(default=None, description="A name a person gave the version.")
    pinned: bool = False
    step: int = Field(
        default=0,
        description="Number of the first version of this version's step: consecutive versions "
        "of one run that only added cells share a step (never a named or pinned one).",
    )


class VersionUpdate(BaseModel):
    """PATCH /versions/{id}: either field may be left out; a null or blank name clears it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Up to 100 characters; trimmed.")
    pinned: bool | None = None


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
        default=None,
        max_length=1024,
        description="Where to save the copy, in an existing folder; default <name>-v<N>.ipynb "
        "beside the original, or in the root folder when the original's folder is not here.",
    )


class RestoreResult(BaseModel):
    path: str


class RejectedRecord(BaseModel):
    index: int = Field(description="Position of the record in the batch sent.")
    reason: str = Field(description="Why the store set it aside (it will not be retried).")


class IngestResult(BaseModel):
    accepted: int = Field(description="Records stored (or already stored: ingest is idempotent).")
    rejected: list[RejectedRecord] = Field(
        default=[],
        description="Records set aside, the rest of the batch having landed (the first 100; "
        "the batch size minus accepted counts them all). They are kept by the backend.",
    )


class Status(BaseModel):
    version: str
    mode: Literal["embedded", "team-client", "team-backend"]
    tracking: bool = Field(description="Tracking is switched on for this server.")
    notebook_tracking: bool | None = Field(
        default=None,
        description="Whether executions of ?notebook= are recorded (false if tracking is off "
        "or the notebook matches an exclude pattern); null without ?notebook=.",
    )
    excluded_by: str | None = Field(
        default=None,
        description="The exclude pattern (tracking setting) that ?notebook= matches, if any.",
    )
    spool_pending: int = Field(description="Records waiting in the local spool.")
    backend_reachable: bool | None = None
    last_error: str | None = None
    kernel_pending: int = Field(
        default=0,
        description="Records (logged params, metrics, tags) this server's kernels keep because "
        "the backend did not take them; they are sent when it answers again.",
    )
    kernel_error: str | None = Field(
        default=None, description="Why a kernel could not deliver them (the latest report)."
    )


class KernelBacklog(BaseModel):
    """A kernel's report (POST /status/kernels): records it keeps because the backend is down."""

    model_config = ConfigDict(extra="forbid")

    kernel: str = Field(min_length=1, max_length=200, description="Which kernel reports.")
    pending: int = Field(ge=0, le=10_000_000, description="Records it keeps; 0: all sent.")
    error: str | None = Field(default=None, max_length=2000, description="Why they wait.")


class TrackingSettings(BaseModel):
    """What this Jupyter server records; the one source of truth, which JupyterLab's settings
    editor shows and changes (same keys)."""

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
    type: Literal[
        "executions",
        "models",
        "settings",
        "comments",
        "reviews",
        "activity",
        "deployments",
        "reset",
    ] = Field(
        description="executions: records of these notebooks were stored; models: these "
        "models got a version or their versions or aliases changed; settings: the tracking "
        "settings changed (GET /settings); comments: comments on these notebooks or models "
        "changed; reviews: reviews of these models changed; activity: the team's feed grew "
        "and the inboxes of ``users`` changed; deployments: these ``deployments`` changed (state, "
        "traffic, events, drift); reset: the server restarted or the client fell "
        "behind, so reload everything."
    )
    notebooks: list[str]
    models: list[str] = Field(
        default_factory=list,
        description="The models a models event concerns (empty for other types).",
    )
    users: list[str] = Field(
        default_factory=list,
        description="activity: the users with something new in their inbox (a toast for them).",
    )
    deployments: list[str] = Field(
        default_factory=list,
        description="deployments: the deployments that changed (empty for other types).",
    )
    at: datetime


class EventsReply(BaseModel):
    events: list[ActivityEvent]
    last: int = Field(description="Pass as ?after= on the next call.")


# -- execution logs and the model registry (issue 4) -----------------------------------------

LogKey = Annotated[str, Field(min_length=1, max_length=250)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ParamValue = bool | int | FiniteFloat | Annotated[str, Field(max_length=6000)] | None
MAX_LOG_ENTRIES = 1000
MAX_CLOCK_SKEW = timedelta(minutes=5)  # a kernel's clock ahead of the server's, tolerated


class LogBatch(BaseModel):
    """What a cell logged; attached to the execution of ``msg_id`` (its execute_request)."""

    model_config = ConfigDict(extra="forbid")

    msg_id: str = Field(
        min_length=1, max_length=128, description="The execute_request msg_id of the cell."
    )
    params: dict[LogKey, ParamValue] = Field(default_factory=dict)
    metrics: dict[LogKey, FiniteFloat] = Field(default_factory=dict)
    step: int | None = Field(default=None, ge=-(2**63), lt=2**63)
    tags: dict[LogKey, Annotated[str, Field(max_length=5000)]] = Field(default_factory=dict)
    at: StoredTime | None = Field(
        default=None,
        description="When the values were logged (ISO 8601; the kernel's clock), so values "
        "buffered while the server was unreachable keep their time; the time the server "
        f"receives them when absent. At most {MAX_CLOCK_SKEW.seconds} s in the future.",
    )

    @model_validator(mode="after")
    def _bounded(self) -> LogBatch:
        n = len(self.params) + len(self.metrics) + len(self.tags)
        if n > MAX_LOG_ENTRIES:
            raise ValueError(f"at most {MAX_LOG_ENTRIES} entries per batch, not {n}; split it")
        # Past times are what buffering produces; a future one is a wrong clock or a forgery.
        if self.at is not None and self.at > datetime.now(timezone.utc) + MAX_CLOCK_SKEW:
            raise ValueError(
                f"at {self.at.isoformat()} is in the future (more than "
                f"{MAX_CLOCK_SKEW.seconds} s ahead of the server's clock); send when the "
                "values were logged, or check this machine's clock"
            )
        return self


class LogsAccepted(BaseModel):
    accepted: int


class MetricPoint(BaseModel):
    value: float
    step: int | None
    at: datetime


class ExecutionLogs(BaseModel):
    params: dict[str, Any] = Field(description="Latest value of each parameter.")
    metrics: dict[str, list[MetricPoint]] = Field(description="Every logged value, oldest first.")
    tags: dict[str, str] = Field(description="Latest value of each tag.")


class Artifact(BaseModel):
    sha256: str
    size: int


class LineageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    msg_id: str | None = Field(
        default=None, max_length=128, description="execute_request msg_id of the registering cell."
    )
    data_fingerprints: list[dict[str, Any]] = Field(default_factory=list, max_length=100)


class ModelVersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of an artifact already PUT to /artifacts."
    )
    flavor: str = Field(min_length=1, max_length=64, description='How to load it, e.g. "sklearn".')
    library_versions: dict[LogKey, Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict
    )
    signature: dict[str, Any] | None = None
    metrics: dict[LogKey, FiniteFloat] = Field(default_factory=dict)
    params: dict[LogKey, Any] = Field(default_factory=dict)
    tags: dict[LogKey, Annotated[str, Field(max_length=5000)]] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=20_000)
    alias: str | None = Field(default=None, description="Point this alias at the new version.")
    lineage: LineageIn = Field(default_factory=LineageIn)
    reference: dict[str, Any] | None = Field(
        default=None,
        description="Summary of the training data per feature (cellops.reference.summarize), "
        "what drift of served requests is measured against; at most 1,000,000 bytes of JSON.",
    )


class ModelVersionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=20_000)
    tags: dict[LogKey, Annotated[str, Field(max_length=5000)]] | None = Field(
        default=None, description="Replaces the version's tags."
    )
    archived: bool | None = Field(
        default=None,
        strict=True,
        description="true hides the version from the default list (it stays loadable); "
        "refused (409) while an alias points at it. false restores it.",
    )


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archived: bool = Field(
        strict=True,
        description="true hides the model from the default list (its versions stay "
        "loadable); refused (409) while it has an alias. false restores it.",
    )


def _alias_rule(schema: dict[str, Any]) -> None:
    """State the alias rule from registry/names.py, the one place the server checks it
    (imported late: the registry package imports these schemas)."""
    from .registry.names import ALIAS_RULE, ALIAS_RULE_TEXT, anchored

    schema["description"] = f"The alias in the path must match {anchored(ALIAS_RULE)}: "
    schema["description"] += f"{ALIAS_RULE_TEXT}."
    schema["x-alias-pattern"] = anchored(ALIAS_RULE)
    schema["x-alias-rule"] = ALIAS_RULE_TEXT


class AliasSet(BaseModel):
    # The alias itself is the path's last segment (PUT /models/{name}/aliases/{alias}).
    model_config = ConfigDict(extra="forbid", json_schema_extra=_alias_rule)

    version: PositiveInt
    override: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Admin only: move a protected alias although rules fail, for this "
        "reason (recorded in the activity feed).",
    )


class Lineage(BaseModel):
    msg_id: str | None
    execution_id: int | None = Field(description="Null until the execution is recorded.")
    run_id: int | None
    version_id: int | None = Field(description="Notebook version current after the execution.")
    version_number: int | None = Field(
        default=None, description="That notebook version's number (as the Versions tab shows it)."
    )
    notebook: str | None
    data_fingerprints: list[dict[str, Any]]


class ModelVersion(BaseModel):
    model: str
    version: int
    aliases: list[str]
    artifact: str
    artifact_size: int
    flavor: str
    library_versions: dict[str, str]
    signature: dict[str, Any] | None
    metrics: dict[str, float]
    params: dict[str, Any]
    tags: dict[str, str]
    description: str | None
    created_by: str | None
    created_at: datetime
    lineage: Lineage
    archived: bool = Field(default=False, description="Hidden from the default list.")
    review: ReviewSummary = Field(
        default_factory=lambda: ReviewSummary(state="none", approvals=[]),
        description="Its review state (GET .../reviews has the whole story).",
    )


class Model(BaseModel):
    name: str
    description: str | None
    latest_version: int
    aliases: dict[str, int]
    created_at: datetime
    updated_at: datetime
    archived: bool = Field(default=False, description="Hidden from the default list.")


# -- team review (issue 11) -------------------------------------------------------------------

MAX_COMMENT_BODY = 10_000  # characters of Markdown in one comment
MAX_REVIEWERS = 20
MAX_PROTECTED_ALIASES = 20


class Me(BaseModel):
    name: str
    role: Literal["viewer", "commenter", "editor", "approver", "admin"]


class UserItem(BaseModel):
    name: str
    role: Literal["viewer", "commenter", "editor", "approver", "admin"]


class UserList(BaseModel):
    items: list[UserItem]


class CellTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["cell"]
    notebook: str = Field(min_length=1, max_length=1024, description="Notebook path.")
    cell_id: str = Field(min_length=1, max_length=128)
    owner: str | None = Field(
        default=None,
        max_length=256,
        description="Team mode: that member's notebook at the path (as GET /notebooks shows).",
    )
    code_sha: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the cell's code the comment is about (UTF-8), when the client "
        "knows it (a kernel commenting from the running cell); else the code of the cell's "
        "newest execution. The comment is outdated once the cell runs other code.",
    )


class ExecutionTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["execution"]
    id: PositiveInt


class RunTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["run"]
    id: PositiveInt


class ModelVersionTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["model_version"]
    model: str = Field(min_length=1, max_length=128)
    version: PositiveInt


CommentTarget = Annotated[
    CellTarget | ExecutionTarget | RunTarget | ModelVersionTarget, Field(discriminator="kind")
]


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: CommentTarget
    body: str = Field(min_length=1, max_length=MAX_COMMENT_BODY, description="Markdown.")
    parent_id: PositiveInt | None = Field(
        default=None, description="Reply to this comment (same target)."
    )


class CommentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str | None = Field(default=None, min_length=1, max_length=MAX_COMMENT_BODY)
    resolved: bool | None = None


class Comment(BaseModel):
    id: int
    target: CommentTarget
    body: str = Field(description="Markdown as written; clients render it sanitized.")
    html: str = Field(
        description="The body rendered by the server and sanitized (no raw HTML, scripts or "
        'unsafe URLs; known @mentions as <span class="cellops-mention">): show this.'
    )
    author: str
    created_at: datetime
    edited_at: datetime | None
    parent_id: int | None
    resolved: bool
    resolved_by: str | None = None
    outdated: bool = Field(description="A cell comment whose cell's code has changed since.")
    deleted: bool = Field(default=False, description="A tombstone kept for its replies.")
    mentions: list[str] = Field(description="Known users the body @mentions.")


class CommentList(BaseModel):
    items: list[Comment]
    next: int | None = Field(
        default=None,
        description="More comments follow: ask again with ?after=<next> (at most 2000 a page).",
    )


class CellCommentCount(BaseModel):
    cell_id: str
    total: int
    unresolved: int


class CommentCounts(BaseModel):
    """Comments per cell of a notebook (the cell badges)."""

    items: list[CellCommentCount]


ReviewState = Literal["none", "requested", "approved", "changes_requested"]


class ReviewRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewers: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=MAX_REVIEWERS
    )


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["approve", "request_changes"]
    body: str | None = Field(default=None, min_length=1, max_length=MAX_COMMENT_BODY)


class Review(BaseModel):
    id: int
    reviewer: str
    verdict: Literal["approve", "request_changes"]
    comment_id: int | None
    body: str | None
    created_at: datetime


class VersionReviews(BaseModel):
    state: ReviewState
    approvals: list[str] = Field(description="Reviewers whose latest verdict approves.")
    changes_requested: list[str] = Field(
        default_factory=list, description="Reviewers whose latest verdict requests changes."
    )
    requested: list[str] = Field(description="Reviewers asked who have not answered yet.")
    items: list[Review] = Field(description="Every verdict, oldest first.")


class ReviewSummary(BaseModel):
    state: ReviewState
    approvals: list[str]


class MetricGate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str = Field(min_length=1, max_length=250)
    op: Literal[">=", ">", "<=", "<", "=="]
    value: FiniteFloat


class NotWorseThanCurrent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str = Field(min_length=1, max_length=250)
    tolerance: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="How much worse than the current holder's value still passes.",
    )
    higher_is_better: bool = Field(default=True, strict=True)


class AliasRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Strict: a policy is a security setting; "1" or "yes" is a client's mistake, not a rule.
    min_approvals: int = Field(default=1, ge=0, le=MAX_REVIEWERS, strict=True)
    block_on_changes_requested: bool = Field(default=True, strict=True)
    metric_gates: list[MetricGate] = Field(default_factory=list, max_length=20)
    not_worse_than_current: list[NotWorseThanCurrent] = Field(default_factory=list, max_length=20)
    signature_compatible: bool = Field(
        default=False,
        strict=True,
        description="The version's input signature must be compatible with the signature of "
        "the version holding the alias now: the same column names (in any order) and dtypes "
        "that accept what the current one accepts (bool → int → float widen; float → int, "
        "numbers ↔ text do not). Passes when no version holds the alias or the holder has "
        "no signature; fails when the version has none but the holder has one.",
    )


class PromotionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protected_aliases: dict[str, AliasRule] = Field(
        default_factory=dict,
        max_length=MAX_PROTECTED_ALIASES,
        description="Alias name → its rule (an alias not listed is free).",
    )
    deploy_requires_alias: str | None = Field(
        default=None,
        description="A deployment of this model may only serve versions that hold this alias "
        "(one of protected_aliases), checked when a deployment is created or changed; a "
        "deployment following this alias itself always passes. null: any version.",
    )
    updated_by: str | None = None
    updated_at: datetime | None = None


class FailedRule(BaseModel):
    rule: str = Field(description="e.g. min_approvals, changes_requested, metric:accuracy>=")
    need: Any
    have: Any
    message: str = Field(description="What is missing, for people.")


class RuleResult(BaseModel):
    """One rule of a protected alias's policy, evaluated for a version: passed or not."""

    rule: str = Field(
        description="e.g. min_approvals, changes_requested, metric:accuracy>=, "
        "not_worse_than_current:accuracy, signature_compatible"
    )
    passed: bool
    need: Any
    have: Any
    message: str = Field(description="What was found, for people.")


class PromotionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: a promotion moves what may be a protected alias; "1" is a client's mistake.
    version: PositiveInt = Field(strict=True, le=999_999_999)
    alias: str = Field(
        min_length=1,
        max_length=200,
        description="The alias to move (the rule of alias names applies: a 400 says it).",
    )
    dry_run: bool = Field(
        default=False, strict=True, description="true: evaluate the rules only, move nothing."
    )


class PromotionResult(BaseModel):
    moved: bool = Field(
        description="The alias points at the version because of this request (also true "
        "when it already did); false for a dry run and a refusal."
    )
    allowed: bool = Field(description="Every rule passed (what a dry run answers).")
    dry_run: bool
    protected: bool = Field(
        description="Whether the model's policy protects the alias; an unprotected alias "
        "has no rules (rules is empty) and always moves."
    )
    model: str
    alias: str
    version: int
    previous: int | None = Field(description="The version the alias held before (null: unset).")
    rules: list[RuleResult] = Field(description="Every rule evaluated, passed or failed.")


class AliasCheck(BaseModel):
    """Whether a version may take a protected alias now (the Models tab's 'still missing')."""

    alias: str
    allowed: bool
    failed: list[FailedRule]


class PromotionChecks(BaseModel):
    items: list[AliasCheck]


class ActivityItem(BaseModel):
    id: int
    at: datetime
    actor: str | None
    type: str = Field(
        description="run.started, model_version.created, alias.moved, alias.override, "
        "promotion.refused, comment.created, review.requested, review.submitted, "
        "policy.changed, webhook.failed"
    )
    model: str | None = None
    version: int | None = None
    notebook: str | None = None
    comment_id: int | None = None
    data: dict[str, Any]


class InboxItem(BaseModel):
    id: int
    reason: Literal["mention", "reply", "review_request", "review"]
    read: bool
    activity: ActivityItem


class InboxPage(BaseModel):
    items: list[InboxItem]
    unread: int


class InboxRead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[PositiveInt] = Field(max_length=1000)


# -- deployments (issue 12) -------------------------------------------------------------------

# Deployment names appear in URLs of the serving listener (/v2/models/{name}, /deployments/
# {name}/invocations): the model name rule, at most 64 characters (serving/names).
DeploymentState = Literal["starting", "ready", "failed"]


class TrafficShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: PositiveInt
    percent: int = Field(ge=0, le=100)


class DeploymentCreate(BaseModel):
    """One of ``version`` or ``alias`` (neither: the model's latest version)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="1-64 letters, digits, '.', '_' or '-', starting with a "
        "letter or digit; it is part of the endpoint's URL."
    )
    model: str
    version: PositiveInt | None = None
    alias: str | None = Field(default=None, description="Follow this alias as it moves.")
    # Strict: making an endpoint public is never inferred from "yes" or 1.
    public: bool = Field(
        default=False,
        strict=True,
        description="Serve without a key (anyone who can reach the listener).",
    )


class DeploymentPatch(BaseModel):
    """Exactly one change: pin a ``version`` (a rollback when it is older), follow an
    ``alias``, split ``traffic`` between two versions (percents summing to 100), or make
    it ``public`` or keyed."""

    model_config = ConfigDict(extra="forbid")

    version: PositiveInt | None = None
    alias: str | None = None
    traffic: list[TrafficShare] | None = Field(default=None, min_length=1, max_length=2)
    public: bool | None = Field(default=None, strict=True)


class DeploymentUrls(BaseModel):
    v2: str = Field(description="Open Inference Protocol: POST {v2}/infer.")
    invocations: str = Field(description="MLflow scoring protocol: POST {invocations}.")


class Deployment(BaseModel):
    name: str
    model: str
    version: int = Field(description="The version taking most of the traffic.")
    alias: str | None = Field(description="The alias followed (null: pinned to versions).")
    state: DeploymentState
    error: str | None = Field(description="Why it failed, in words a person can act on.")
    traffic: list[TrafficShare]
    urls: DeploymentUrls
    public: bool
    drifted: bool | None = Field(
        default=None,
        description="The last drift check's verdict on its sampled requests (true: some "
        "feature drifted); null until one could judge (too few samples, no reference).",
    )
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class DeploymentList(BaseModel):
    items: list[Deployment] = Field(description="Every deployment, by name.")


class DeploymentCreated(Deployment):
    key: str | None = Field(
        description="The inference key (Authorization: Bearer <key>); shown this once. "
        "Null for a public deployment."
    )


class DeploymentKey(BaseModel):
    key: str = Field(
        description="The new inference key, shown this once; the old one stops working."
    )


class DeploymentEvent(BaseModel):
    id: int
    at: datetime
    actor: str | None = Field(description="Who; null for the serving router itself.")
    type: str
    data: dict[str, Any]


class DeploymentEventList(BaseModel):
    items: list[DeploymentEvent] = Field(description="Oldest first.")


class DeploymentMinute(BaseModel):
    minute: datetime
    version: int
    requests: int
    errors: int
    p50: float | None = Field(description="Median latency in seconds (null: no requests).")
    p95: float | None


class DeploymentMetrics(BaseModel):
    deployment: str
    window: int = Field(description="Minutes covered, up to now.")
    minutes: list[DeploymentMinute]


# Drift of served requests against the training reference (monitoring/drift.py).
DriftTestName = Literal["ks", "psi", "wasserstein", "chi2"]


class DriftTest(BaseModel):
    test: DriftTestName = Field(
        description="ks: two-sample Kolmogorov-Smirnov against the reference quantiles; psi: "
        "population stability index over the reference bins (or categories); wasserstein: "
        "distance in units of the reference std; chi2: chi-squared on category counts."
    )
    statistic: float
    threshold: float = Field(
        description="drifted when statistic > threshold (ks, chi2: the critical value of the "
        "p-value setting for these sample sizes)."
    )
    p_value: float | None = Field(description="ks and chi2 only.")
    drifted: bool


class FeatureDrift(BaseModel):
    feature: str
    kind: Literal["numeric", "categorical"]
    samples: int = Field(description="Requests with a value for this feature in the window.")
    drifted: bool | None = Field(
        description="numeric: ks and (psi or wasserstein) over threshold; categorical: chi2 "
        "and psi. null: not enough samples (see reason)."
    )
    reason: str | None = None
    tests: list[DriftTest]


class DriftReport(BaseModel):
    """Drift of one version's sampled requests against that version's training reference."""

    version: int | None = None
    reference: Literal["training", "input_example"] | None = Field(
        default=None, description="What the reference was computed from (null: none stored)."
    )
    samples: int = Field(description="Sampled requests in the window.")
    min_samples: int
    drifted: bool | None = Field(description="Any feature drifted; null: cannot say (message).")
    message: str | None = None
    features: list[FeatureDrift]


class DeploymentDrift(BaseModel):
    deployment: str
    window: int = Field(description="Minutes of sampled requests, up to now.")
    drifted: bool | None = Field(
        description="Any served version drifted; null when none can say (too few samples, "
        "no reference)."
    )
    versions: list[DriftReport] = Field(
        description="One per served version, the one taking most traffic first."
    )


# -- webhooks (issue 13) -------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    """A receiver to register (admin). ``events``: any of run.finished,
    model_version.created, alias.moved, review.submitted, comment.created,
    deployment.changed, drift.detected."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="An http or https URL.")
    events: list[str] = Field(max_length=32)
    secret: str = Field(
        max_length=256,
        description="Signs every delivery (X-Cellops-Signature); never shown again.",
    )


class WebhookPatch(BaseModel):
    """A change to a webhook (admin): any of its URL, events and secret; what is left out
    (or null) is kept. The same checks as at registration."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048, description="An http or https URL.")
    events: list[str] | None = Field(default=None, max_length=32)
    secret: str | None = Field(
        default=None, max_length=256, description="A new secret to sign deliveries with."
    )


class WebhookLastDelivery(BaseModel):
    status: Literal["delivered", "retrying", "failed"]
    at: datetime
    response_code: int | None = None


class Webhook(BaseModel):
    id: int
    url: str
    events: list[str]
    created_by: str | None = None
    created_at: datetime
    last_delivery: WebhookLastDelivery | None = Field(
        default=None, description="The latest attempt at a delivery to it, if any."
    )


class WebhookList(BaseModel):
    items: list[Webhook]


class WebhookTestQueued(BaseModel):
    delivery: str = Field(description="The delivery id of the queued ping (X-Cellops-Delivery).")


class WebhookAttempt(BaseModel):
    """One attempt at a delivery; ``id`` is the delivery's (the same on its retries)."""

    id: str
    event: str
    attempt: int
    status: Literal["delivered", "retrying", "failed"]
    response_code: int | None = None
    error: str | None = None
    at: datetime
    duration_ms: float


class WebhookAttemptList(BaseModel):
    items: list[WebhookAttempt]
