"""Access tokens for one social connection: decrypted on use, refreshed before expiry, one refresh at a time.

A refresh runs inside the transaction that locks the connection row (`SELECT ... FOR UPDATE` on
Postgres; SQLite takes its write lock with a no-op update), and the new tokens are written in that same
transaction. A second worker wanting the same connection waits, then finds the fresh token and does
not refresh again. This matters for TikTok, whose refresh tokens rotate: a second refresh with the
old refresh token would fail and disconnect the account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import SocialConnection
from montage_pipeline.publishing.tokens import TokenCipher

REFRESH_SKEW = timedelta(minutes=5)
_process_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True, slots=True)
class NewTokens:
    access_token: str
    expires_in_s: int
    refresh_token: str | None = None  # None: the platform keeps the old refresh token valid


class MissingTokenError(LookupError):
    """The connection holds no access token (the user disconnected): only reconnecting helps."""


# Given (refresh token or None, current access token), ask the platform for new tokens.
Refresher = Callable[[str | None, str], NewTokens]


def _lock_for(connection_id: int) -> threading.Lock:
    with _locks_guard:
        return _process_locks.setdefault(connection_id, threading.Lock())


class ConnectionTokens:
    """The token source a platform client uses; it never logs or returns the refresh token."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        connection_id: int,
        cipher: TokenCipher,
        refresher: Refresher,
        skew: timedelta = REFRESH_SKEW,
    ) -> None:
        self._sessions = sessions
        self.connection_id = connection_id
        self._cipher = cipher
        self._refresher = refresher
        self._skew = skew
        self._cached: str | None = None
        self.refreshes = 0

    @property
    def current(self) -> str | None:
        """The access token last handed out (to tell the platform's refusal of it from a newer one)."""
        return self._cached

    def secrets(self) -> list[str]:
        """Everything that must never appear in an error message (for scrubbing)."""
        return [self._cached] if self._cached else []

    def get(self, force_refresh: bool = False, stale: str | None = None) -> str:
        """A usable access token. `force_refresh` after the platform refused `stale`."""
        with _lock_for(self.connection_id), self._sessions() as session, session.begin():
            if session.get_bind().dialect.name == "sqlite":
                session.execute(
                    update(SocialConnection)
                    .where(SocialConnection.id == self.connection_id)
                    .values(id=SocialConnection.id)
                )
            conn = session.scalars(
                select(SocialConnection).where(SocialConnection.id == self.connection_id).with_for_update()
            ).one()
            if conn.access_token_encrypted is None:
                raise MissingTokenError(f"connection {conn.id} has no access token: the user must reconnect")
            current = self._cipher.decrypt(conn.access_token_encrypted)
            expiring = (
                conn.token_expires_at is not None and conn.token_expires_at - self._skew <= datetime.now(UTC)
            )
            # Someone else may have refreshed while we waited for the lock: then `current` is new.
            refused = force_refresh and (stale is None or stale == current)
            if expiring or refused:
                refresh = (
                    self._cipher.decrypt(conn.refresh_token_encrypted)
                    if conn.refresh_token_encrypted
                    else None
                )
                new = self._refresher(refresh, current)
                conn.access_token_encrypted = self._cipher.encrypt(new.access_token)
                if new.refresh_token:
                    conn.refresh_token_encrypted = self._cipher.encrypt(new.refresh_token)
                conn.token_expires_at = datetime.now(UTC) + timedelta(seconds=new.expires_in_s)
                current = new.access_token
                self.refreshes += 1
            self._cached = current
            return current
