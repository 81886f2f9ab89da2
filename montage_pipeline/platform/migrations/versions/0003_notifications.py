"""creator notifications: an opt-out per user, and one row per (week, user) sent

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("notifications_opt_out", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "montage_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=False), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_montage_notifications_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_montage_notifications")),
        sa.UniqueConstraint(
            "week_start", "user_id", name=op.f("uq_montage_notifications_week_start_user_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("montage_notifications")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("notifications_opt_out")
