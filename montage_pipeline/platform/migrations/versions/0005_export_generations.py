"""weekly_montages: the export generation the row points at; object keys instead of presigned URLs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Rows written before this stored presigned URLs, which die after 7 days: their `render_path_*` become
the object keys the URLs named (`exports/{job_id}/{name}`), which the read API presigns per request.
Public (unsigned) URLs are left as they are.
"""

from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PATH_COLUMNS = ("render_path_landscape", "render_path_portrait")


def _key_of_presigned(value: str | None) -> str | None:
    if not value or "X-Amz-Signature=" not in value:
        return None
    path = unquote(urlsplit(value).path)
    at = path.find("/exports/")
    return path[at + 1 :] if at >= 0 else None


def upgrade() -> None:
    with op.batch_alter_table("weekly_montages") as batch:
        batch.add_column(sa.Column("export_generation", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("export_files", sa.JSON(), nullable=True))
    table = sa.table(
        "weekly_montages", sa.column("id", sa.Integer), *(sa.column(c, sa.Text) for c in PATH_COLUMNS)
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(table)).mappings().all():
        keys = {c: _key_of_presigned(row[c]) for c in PATH_COLUMNS}
        changed = {c: k for c, k in keys.items() if k is not None}
        if changed:
            conn.execute(table.update().where(table.c.id == row["id"]).values(**changed))


def downgrade() -> None:
    with op.batch_alter_table("weekly_montages") as batch:
        batch.drop_column("export_files")
        batch.drop_column("export_generation")
