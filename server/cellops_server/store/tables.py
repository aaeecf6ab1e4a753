"""The store's tables (SQLAlchemy Core). Alembic migrations create them; keep in sync."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .escaping import NulSafeText

metadata = sa.MetaData()

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
JSON_OR_NULL = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        if value is not None and dialect.name == "sqlite":
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


# Content-addressed text (cell code, version cell lists): stored once per distinct sha256,
# in the same transaction as the rows that point at it. Binary outputs go to the blob store.
texts = sa.Table(
    "texts",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("body", NulSafeText, nullable=False),
)

notebooks = sa.Table(
    "notebooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),
    # Who the notebook is (identity.py): a member's file at ``path`` (``owner``; null in
    # embedded mode), or the file at ``repo_path`` in the git repository ``repo``.
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("owner", sa.String(256)),
    sa.Column("repo", sa.String(1024)),
    sa.Column("repo_path", sa.String(1024)),
    sa.Column("copied_from", sa.Integer, sa.ForeignKey("notebooks.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_activity_at", UTCDateTime, nullable=False),
    sa.Column("runs_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("executions_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("versions_count", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_notebooks_path", "path"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id"), nullable=False),
    sa.Column("kernel_id", sa.String(64), nullable=False),
    sa.Column("kernel_session", sa.String(128)),
    sa.Column("user_name", sa.String(256)),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("git", JSON),
    sa.Column("kernel_spec", JSON),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("instance", sa.String(64), nullable=False),
    # Migration 0012: "interactive" (JupyterLab) or "headless" (``cellops run``), with the
    # headless run's parameters, its CI job ({"system", "commit", "branch", "url"}) and
    # how it ended ("ok", "error", "timeout"; null for interactive runs).
    sa.Column("origin", sa.String(16), nullable=False, server_default="interactive"),
    sa.Column("parameters", JSON_OR_NULL),
    sa.Column("ci", JSON_OR_NULL),
    sa.Column("outcome", sa.String(16)),
    sa.Index("ix_runs_notebook", "notebook_id", "id"),
    sa.Index("ix_runs_source", "source", "instance"),
)

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("msg_id", sa.String(128), nullable=False, unique=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("cell_id", sa.String(128)),
    sa.Column("code_sha", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("duration_ms", sa.Float),
    sa.Column("execution_count", sa.Integer),
    sa.Column("error", JSON),
    sa.Column("outputs", JSON),
    sa.Column("version_number", sa.Integer),
    # Who first sent it (the team member, or the run's user in embedded mode) and from which
    # server: only they may send it again (store/ingest.py).
    sa.Column("owner", sa.String(256)),
    sa.Column("source", sa.String(64)),
    sa.Index("ix_executions_run_seq", "run_id", "seq"),
    sa.Index("ix_executions_notebook", "notebook_id", "id"),
    sa.Index("ix_executions_running", "status"),
    sa.Index("ix_executions_cell", "notebook_id", "cell_id", "id"),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("execution_id", sa.Integer, sa.ForeignKey("executions.id")),
    # A snapshot: the whole (cell id, code sha) list as JSON in texts. Only some rows have one
    # (see version_storage.py); every row of a store older than revision 0005 does.
    sa.Column("cells_sha", sa.String(64)),
    sa.Column("cells_count", sa.Integer, nullable=False),
    # The delta from the previous version: these cells deleted, then one cell set or appended.
    sa.Column("delta_deleted", JSON_OR_NULL),
    sa.Column("delta_cell_id", sa.String(128)),
    sa.Column("delta_code_sha", sa.String(64)),
    # A name a person gave the version and whether they pinned it (migration 0008).
    sa.Column("name", sa.String(100)),
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("notebook_id", "number", name="uq_versions_notebook_number"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# What cells logged (params, metrics, tags), keyed by the execute_request msg_id: the kernel
# logs before the writer has stored the execution row, so rows are joined at read time.
execution_logs = sa.Table(
    "execution_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("msg_id", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # param | metric | tag
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", JSON),
    sa.Column("step", sa.BigInteger),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_execution_logs_msg", "msg_id", "id"),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", NulSafeText),
    # Bumped under a row lock on this row: the next version number.
    sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Archived: hidden from the default lists, still loadable (migration 0009).
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_models_updated", "updated_at", "id"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("artifact", sa.String(64), nullable=False),
    sa.Column("artifact_size", sa.BigInteger, nullable=False),
    sa.Column("flavor", sa.String(64), nullable=False),
    sa.Column("library_versions", JSON, nullable=False),
    sa.Column("signature", JSON),
    sa.Column("metrics", JSON, nullable=False),
    sa.Column("params", JSON, nullable=False),
    sa.Column("tags", JSON, nullable=False),
    sa.Column("description", NulSafeText),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("lineage_msg_id", sa.String(128)),
    # The team member whose execution the lineage must be (null: not checked, in embedded
    # mode); it resolves only to an execution they own, even one stored after registering.
    sa.Column("lineage_owner", sa.String(256)),
    sa.Column("data_fingerprints", JSON, nullable=False),
    # The client's Idempotency-Key and a digest of the request body: a repeated request
    # answers this version; the same key with another body is refused.
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("request_digest", sa.String(64)),
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    sa.UniqueConstraint("model_id", "idempotency_key", name="uq_model_versions_idempotency_key"),
    sa.Index("ix_model_versions_msg", "lineage_msg_id"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# Records the store would not keep (another member's, or values it cannot hold), with why
# and who sent them: nothing a client sends is dropped without a trace.
rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("sender", sa.String(256)),
    sa.Column("reason", NulSafeText, nullable=False),
    sa.Column("record", NulSafeText, nullable=False),  # the record as JSON
    sa.Index("ix_rejected_records_at", "at"),
)

# -- team review (issue 11, migration 0010) -------------------------------------------------

# A comment on a cell (notebook + cell id), an execution, a run or a model version. Replies
# point at their thread's first comment. A deleted comment with replies stays as a tombstone
# (``deleted`` set, body emptied). ``code_sha`` is the cell's code when the comment was
# written: a cell comment is outdated once the cell's newest code differs.
comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target_kind", sa.String(16), nullable=False),  # cell|execution|run|model_version
    sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id")),
    sa.Column("cell_id", sa.String(128)),
    sa.Column("execution_id", sa.Integer, sa.ForeignKey("executions.id")),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id")),
    sa.Column("model_version", sa.Integer),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("comments.id")),
    sa.Column("body", NulSafeText, nullable=False),
    # The body rendered to sanitized HTML when written (review/markdown.py): lists of
    # comments never render Markdown on the way out.
    sa.Column("html", NulSafeText),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("edited_at", UTCDateTime),
    sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("resolved_by", sa.String(256)),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("code_sha", sa.String(64)),
    sa.Column("mentions", JSON, nullable=False),  # user names, as mentioned
    sa.Index("ix_comments_cell", "notebook_id", "cell_id", "id"),
    sa.Index("ix_comments_execution", "execution_id", "id"),
    sa.Index("ix_comments_run", "run_id", "id"),
    sa.Index("ix_comments_model_version", "model_id", "model_version", "id"),
    sa.Index("ix_comments_parent", "parent_id"),
)

# Who was asked to review a model version, by whom.
review_requests = sa.Table(
    "review_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("reviewer", sa.String(256), nullable=False),
    sa.Column("requested_by", sa.String(256), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint(
        "model_id", "model_version", "reviewer", name="uq_review_requests_reviewer"
    ),
)

# Every verdict given; the latest of each reviewer counts (review state, promotion rules).
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("reviewer", sa.String(256), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),  # approve | request_changes
    sa.Column("comment_id", sa.Integer, sa.ForeignKey("comments.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_reviews_version", "model_id", "model_version", "id"),
)

# A model's promotion policy (schemas.PromotionPolicy as JSON), set by an admin.
model_policies = sa.Table(
    "model_policies",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("policy", JSON, nullable=False),
    sa.Column("updated_by", sa.String(256)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# The team's activity: one row per thing done (review/activity.py). The feed, the inbox,
# live updates and webhooks (webhooks/) are all read from it. ``data`` holds what the feed
# shows (a comment's excerpt, an override's reason, an alias's old and new version).
activity = sa.Table(
    "activity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(256)),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128)),
    sa.Column("model_version", sa.Integer),
    sa.Column("notebook", sa.String(1024)),
    sa.Column("notebook_id", sa.Integer),
    sa.Column("comment_id", sa.Integer),
    sa.Column("data", JSON, nullable=False),
    sa.Index("ix_activity_actor", "actor", "id"),
)

# What reaches one user (a mention, a review request, a verdict on their version): kept
# until they mark it read.
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_name", sa.String(256), nullable=False),
    sa.Column("activity_id", sa.Integer, sa.ForeignKey("activity.id"), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),  # mention | review_request | review
    sa.Column("read_at", UTCDateTime),
    sa.UniqueConstraint("user_name", "activity_id", name="uq_inbox_user_activity"),
    sa.Index("ix_inbox_user", "user_name", "id"),
)

# -- deployments (issue 12, migration 0011) ---------------------------------------------------

# A named endpoint. It serves ``traffic`` (a list of {"version", "percent"}): one version at
# 100 %, or a canary split between two. With ``alias`` set it follows that alias: moving the
# alias moves the deployment. ``state`` is what the serving router last reported (starting,
# ready, failed with ``error``). ``generation`` grows with every change, so the router sees
# what changed since it last looked.
deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(64)),
    sa.Column("traffic", JSON, nullable=False),
    sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("state", sa.String(16), nullable=False),  # starting | ready | failed
    sa.Column("error", NulSafeText),
    sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# The deployment's inference key, as a sha256 of the key (the key is shown once).
deployment_keys = sa.Table(
    "deployment_keys",
    metadata,
    sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id"), primary_key=True),
    sa.Column("key_sha256", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Every change of a deployment, with who and when (``actor`` null: the serving router).
# Kept after the deployment is deleted (by name), as its history.
deployment_events = sa.Table(
    "deployment_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("deployment", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(256)),
    # created | version_changed | alias_followed | traffic_changed | rolled_back | public_changed
    # | state_changed | key_rotated | deleted
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("data", JSON, nullable=False),
    sa.Index("ix_deployment_events_deployment", "deployment", "id"),
)

# Request outcomes per deployment, version and minute, written by the serving router.
# ``buckets``: request counts per latency histogram bucket (serving/metrics.py BUCKETS,
# seconds), from which p50/p95 are read.
deployment_metrics = sa.Table(
    "deployment_metrics",
    metadata,
    sa.Column("deployment", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("minute", UTCDateTime, primary_key=True),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
    sa.Column("buckets", JSON, nullable=False),
)

# What a model version was trained on, per feature (monitoring/reference.py): quantile bins
# and moments of numeric columns, frequencies of categorical ones. Drift compares samples
# of requests against it.
training_references = sa.Table(
    "training_references",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("model_version", sa.Integer, primary_key=True),
    sa.Column("summary", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# A sample of served requests (inputs and predictions), kept bounded per deployment.
deployment_samples = sa.Table(
    "deployment_samples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("deployment", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("inputs", JSON, nullable=False),  # rows: lists of feature values, or {column: value}
    sa.Column("predictions", JSON, nullable=False),
    sa.Index("ix_deployment_samples_deployment", "deployment", "id"),
)

# -- webhooks (issue 13, migration 0013) --------------------------------------------------------

# A receiver an admin registered: the events it wants, the secret its deliveries are signed
# with, and ``cursor``: the last activity id examined for it (a new webhook starts at the
# newest, so it never replays history). ``failure_noticed_at``: when the feed was last told
# a delivery to it failed (at most one such notice a minute).
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", JSON, nullable=False),
    sa.Column("secret", sa.String(256), nullable=False),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("cursor", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failure_noticed_at", UTCDateTime),
)

# The outbox: one delivery per webhook and event, its body frozen when queued. ``uuid`` is
# the X-Cellops-Delivery header, the same on every attempt. ``activity_id`` is null for a
# test ping. status: pending | retrying | delivered | failed; a pending or retrying one is
# sent once ``next_attempt_at`` has passed (a lease while in flight: a process that dies
# mid-send leaves it due again).
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column(
        "webhook_id", sa.Integer, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("activity_id", sa.Integer),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("webhook_id", "activity_id", name="uq_webhook_deliveries_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# Every attempt at a delivery: the deliveries log. status: delivered | retrying | failed.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("webhook_id", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("response_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Index("ix_webhook_attempts_webhook", "webhook_id", "id"),
)
