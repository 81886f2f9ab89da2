"""creator notifications: when an email was claimed, so a claim whose sender died can be taken again

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "montage_notifications", sa.Column("claimed_at", sa.DateTime(timezone=False), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("montage_notifications") as batch:
        batch.drop_column("claimed_at")
