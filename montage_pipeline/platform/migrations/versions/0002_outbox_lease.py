"""outbox lease: who holds a social post, until when, and its step-by-step progress

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("social_posts", sa.Column("claimed_by", sa.String(length=128), nullable=True))
    op.add_column("social_posts", sa.Column("lease_expires_at", sa.DateTime(timezone=False), nullable=True))
    op.add_column("social_posts", sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("social_posts") as batch:
        batch.drop_column("progress")
        batch.drop_column("lease_expires_at")
        batch.drop_column("claimed_by")
