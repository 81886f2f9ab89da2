"""platform schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column(
            "subscription_tier",
            sa.Enum(
                "free",
                "creator",
                "creator_plus",
                name="subscription_tier",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("opted_out_of_featuring", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("handle", name=op.f("uq_users_handle")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "PROCESSING",
                "SUCCESS",
                "FAILED",
                name="job_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "kind",
            sa.Enum("upload", "weekly_montage", name="job_kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("game", sa.String(length=128), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("scoring", sa.JSON(), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.Column("likes", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_jobs_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            "ix_jobs_status_kind_created_at", ["status", "kind", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_jobs_user_id"), ["user_id"], unique=False)

    op.create_table(
        "social_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "platform",
            sa.Enum(
                "youtube",
                "tiktok",
                "instagram",
                name="social_platform",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("auto_post_weekly", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_social_connections_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_connections")),
        sa.UniqueConstraint(
            "user_id",
            "platform",
            "account_id",
            name=op.f("uq_social_connections_user_id_platform_account_id"),
        ),
    )
    with op.batch_alter_table("social_connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_social_connections_user_id"), ["user_id"], unique=False)

    op.create_table(
        "renders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column(
            "format",
            sa.Enum("landscape", "portrait", name="render_format", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_renders_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renders")),
    )
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_renders_job_id"), ["job_id"], unique=False)

    op.create_table(
        "social_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column(
            "platform",
            sa.Enum(
                "youtube",
                "tiktok",
                "instagram",
                name="social_post_platform",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "claimed",
                "uploading",
                "processing",
                "published",
                "failed",
                "skipped",
                name="post_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("remote_handle", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["social_connections.id"],
            name=op.f("fk_social_posts_connection_id_social_connections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_posts")),
        sa.UniqueConstraint(
            "week_start",
            "platform",
            "connection_id",
            name=op.f("uq_social_posts_week_start_platform_connection_id"),
        ),
    )
    op.create_table(
        "weekly_montages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("render_path_landscape", sa.Text(), nullable=True),
        sa.Column("render_path_portrait", sa.Text(), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("featured_user_ids", sa.JSON(), nullable=True),
        sa.Column("clip_count", sa.Integer(), nullable=True),
        sa.Column("total_duration", sa.Float(), nullable=True),
        sa.Column("is_featured", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_weekly_montages_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weekly_montages")),
        sa.UniqueConstraint("week_start", name=op.f("uq_weekly_montages_week_start")),
    )


def downgrade() -> None:

    op.drop_table("weekly_montages")
    op.drop_table("social_posts")
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_renders_job_id"))

    op.drop_table("renders")
    with op.batch_alter_table("social_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_connections_user_id"))

    op.drop_table("social_connections")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_user_id"))
        batch_op.drop_index("ix_jobs_status_kind_created_at")
        batch_op.drop_index(batch_op.f("ix_jobs_created_at"))

    op.drop_table("jobs")
    op.drop_table("users")
