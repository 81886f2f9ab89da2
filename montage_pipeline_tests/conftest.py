"""Fixtures shared by the suite: throwaway databases on the real PostgreSQL server and on SQLite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from montage_pipeline.platform.migrate import upgrade

PG_ADMIN_URL = os.environ.get("MONTAGE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the real PostgreSQL server, dropped afterwards."""
    name = f"montage_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite needs the server: say so plainly instead of a stack of errors
        admin.dispose()
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc}); run `make services`")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'platform.sqlite'}"


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated platform database, once on PostgreSQL and once on SQLite."""
    url: str = request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")
    upgrade(url)
    return url
