"""Where the suite's PostgreSQL server is: conftest's fixtures and the built week both make their
throwaway databases there (a module of its own, so neither imports the other)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("MONTAGE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the real PostgreSQL server (its URL), dropped afterwards."""
    name = f"montage_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite needs the server: say so plainly instead of a stack of errors
        admin.dispose()
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc}); run `make services`")
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def dagster_instance_env(home: Path, url: str) -> dict[str, str]:
    """The environment of a production Dagster instance on the database at `url`: `home` (made here)
    holds the repository's dagster.yaml, which reads its PostgreSQL connection from these variables."""
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    instance = make_url(url)
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": instance.username or "postgres",
        "DAGSTER_PG_PASSWORD": instance.password or "",
        "DAGSTER_PG_HOST": instance.host or "127.0.0.1",
        "DAGSTER_PG_DB": instance.database or "",
    }
