"""engagement: each post's daily counts from the platforms, and what each week's montage featured

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "post_engagement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("social_post_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("week_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.Column("likes", sa.BigInteger(), nullable=True),
        sa.Column("comments", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=False), nullable=False),
        sa.ForeignKeyConstraint(
            ["social_post_id"],
            ["social_posts.id"],
            name=op.f("fk_post_engagement_social_post_id_social_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_engagement")),
        sa.UniqueConstraint("social_post_id", "day", name=op.f("uq_post_engagement_social_post_id_day")),
    )
    op.create_index("ix_post_engagement_week_start", "post_engagement", ["week_start"])
    op.create_table(
        "engagement_exposure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("clips", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_exposure")),
        sa.UniqueConstraint(
            "week_start", "kind", "value", name=op.f("uq_engagement_exposure_week_start_kind_value")
        ),
    )


def downgrade() -> None:
    op.drop_table("engagement_exposure")
    op.drop_index("ix_post_engagement_week_start", table_name="post_engagement")
    op.drop_table("post_engagement")
