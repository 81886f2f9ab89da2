"""weekly themes set by admins, in-app notifications, and each social account's public handle

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("social_connections", sa.Column("remote_handle", sa.String(length=255), nullable=True))
    op.create_table(
        "weekly_themes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("theme", sa.String(length=64), nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weekly_themes")),
        sa.UniqueConstraint("week_start", name=op.f("uq_weekly_themes_week_start")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("montage_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=False), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users")),
        sa.ForeignKeyConstraint(
            ["montage_id"], ["weekly_montages.id"], name=op.f("fk_notifications_montage_id_weekly_montages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "user_id", "week_start", "kind", name=op.f("uq_notifications_user_id_week_start_kind")
        ),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("weekly_themes")
    with op.batch_alter_table("social_connections") as batch:
        batch.drop_column("remote_handle")
