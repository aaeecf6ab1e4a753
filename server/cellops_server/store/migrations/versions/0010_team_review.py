"""Team review: comments, review requests and verdicts, promotion policies, the activity
record and each user's inbox.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("notebook_id", sa.Integer(), sa.ForeignKey("notebooks.id")),
        sa.Column("cell_id", sa.String(128)),
        sa.Column("execution_id", sa.Integer(), sa.ForeignKey("executions.id")),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id")),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id")),
        sa.Column("model_version", sa.Integer()),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("comments.id")),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html", sa.Text()),
        sa.Column("author", sa.String(256), nullable=False),
        _when("created_at"),
        _when("edited_at", nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("resolved_by", sa.String(256)),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("code_sha", sa.String(64)),
        sa.Column("mentions", JSON, nullable=False),
    )
    op.create_index("ix_comments_cell", "comments", ["notebook_id", "cell_id", "id"])
    op.create_index("ix_comments_execution", "comments", ["execution_id", "id"])
    op.create_index("ix_comments_run", "comments", ["run_id", "id"])
    op.create_index("ix_comments_model_version", "comments", ["model_id", "model_version", "id"])
    op.create_index("ix_comments_parent", "comments", ["parent_id"])
    op.create_table(
        "review_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False),
        _when("requested_at"),
        sa.UniqueConstraint(
            "model_id", "model_version", "reviewer", name="uq_review_requests_reviewer"
        ),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("comment_id", sa.Integer(), sa.ForeignKey("comments.id")),
        _when("created_at"),
    )
    op.create_index("ix_reviews_version", "reviews", ["model_id", "model_version", "id"])
    op.create_table(
        "model_policies",
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("policy", JSON, nullable=False),
        sa.Column("updated_by", sa.String(256)),
        _when("updated_at"),
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), primary_key=True),
        _when("at"),
        sa.Column("actor", sa.String(256)),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("model_version", sa.Integer()),
        sa.Column("notebook", sa.String(1024)),
        sa.Column("notebook_id", sa.Integer()),
        sa.Column("comment_id", sa.Integer()),
        sa.Column("data", JSON, nullable=False),
    )
    op.create_index("ix_activity_actor", "activity", ["actor", "id"])
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_name", sa.String(256), nullable=False),
        sa.Column("activity_id", sa.Integer(), sa.ForeignKey("activity.id"), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        _when("read_at", nullable=True),
        sa.UniqueConstraint("user_name", "activity_id", name="uq_inbox_user_activity"),
    )
    op.create_index("ix_inbox_user", "inbox", ["user_name", "id"])


def downgrade() -> None:
    for table in ("inbox", "activity", "model_policies", "reviews", "review_requests"):
        op.drop_table(table)
    op.drop_table("comments")
