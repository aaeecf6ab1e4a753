"""The store's tables (SQLAlchemy Core). Alembic migrations create them; keep in sync."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


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
    sa.Column("body", sa.Text, nullable=False),
)

notebooks = sa.Table(
    "notebooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_activity_at", UTCDateTime, nullable=False),
    sa.Column("runs_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("executions_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("versions_count", sa.Integer, nullable=False, server_default="0"),
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
    sa.Column("cells_sha", sa.String(64), nullable=False),
    sa.Column("cells_count", sa.Integer, nullable=False),
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
    sa.Column("description", sa.Text),
    # Bumped under a row lock on this row: the next version number.
    sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
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
    sa.Column("description", sa.Text),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("lineage_msg_id", sa.String(128)),
    sa.Column("data_fingerprints", JSON, nullable=False),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    sa.Index("ix_model_versions_msg", "lineage_msg_id"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
