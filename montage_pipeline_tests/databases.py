"""Where the suite's PostgreSQL server is: conftest's fixtures and the built week both make their
throwaway databases there (a module of its own, so neither imports the other)."""

from __future__ import annotations

import os

PG_ADMIN_URL = os.environ.get("MONTAGE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
