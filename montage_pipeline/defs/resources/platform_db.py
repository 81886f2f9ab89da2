"""The platform's database (users, jobs, renders, connections, weekly montages, the posting outbox)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from montage_pipeline.platform.engine import make_engine


class PlatformDatabase(dg.ConfigurableResource):
    """SQLAlchemy access to the platform tables; `url` comes from `EnvVar` in production."""

    url: str

    _engine: Engine | None = PrivateAttr(default=None)
    _sessions: sessionmaker[Session] | None = PrivateAttr(default=None)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        return self._engine

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        """Plain sessions (the caller begins its own transactions), for code outside Dagster."""
        _ = self.engine
        assert self._sessions is not None
        return self._sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        _ = self.engine
        assert self._sessions is not None
        with self._sessions.begin() as session:
            yield session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
