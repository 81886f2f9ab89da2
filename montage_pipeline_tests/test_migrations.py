from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from montage_pipeline.platform.migrate import downgrade, upgrade
from montage_pipeline.platform.models import Base, WeeklyMontage

PLATFORM_TABLES = {
    "users",
    "jobs",
    "renders",
    "social_connections",
    "weekly_montages",
    "social_posts",
    "montage_notifications",
    "weekly_themes",
    "notifications",
    "post_engagement",
    "engagement_exposure",
}


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
def test_upgrade_creates_the_platform_schema_and_downgrade_removes_it(backend: str, request) -> None:
    url = request.getfixturevalue(backend)
    upgrade(url)
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) >= PLATFORM_TABLES
        for table in PLATFORM_TABLES:  # the migration and the models describe the same columns
            migrated = {c["name"] for c in inspector.get_columns(table)}
            assert migrated == {c.name for c in Base.metadata.tables[table].columns}, table
        assert current_revision(engine) == "0008"
        upgrade(url)  # idempotent
        downgrade(url, "base")
        assert not PLATFORM_TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_week_start_is_unique(db_url: str) -> None:
    engine = create_engine(db_url)
    week = datetime(2025, 1, 27, tzinfo=UTC)
    try:
        with Session(engine) as session, session.begin():
            session.add(WeeklyMontage(week_start=week, title="a"))
        with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
            session.add(WeeklyMontage(week_start=week, title="b"))
        with Session(engine) as session:
            stored = session.query(WeeklyMontage).one()
            assert stored.week_start == week  # aware UTC back from both backends
    finally:
        engine.dispose()
