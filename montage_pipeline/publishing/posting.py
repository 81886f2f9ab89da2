"""Posting one week: who gets a post, and the outbox worker loop that drives each platform client.

Who: the featured users of the week on Creator+ who have not opted out of featuring, through each of
their connections with `auto_post_weekly` on, for the platforms that are enabled. Each post is
attempted with backoff; a permanent refusal ends it FAILED with the reason, a transient failure leaves
it open (the step's retry, or the next run, resumes it from the saved handle).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import (
    PostState,
    SocialConnection,
    SocialPlatform,
    SocialPost,
    SubscriptionTier,
    User,
)
from montage_pipeline.publishing.backoff import with_backoff
from montage_pipeline.publishing.content import PostContent
from montage_pipeline.publishing.credentials import ConnectionTokens, NewTokens
from montage_pipeline.publishing.errors import PermanentPostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.outbox import (
    FINAL_STATES,
    LeaseLostError,
    PostProgress,
    PostTarget,
    claim_next,
)
from montage_pipeline.publishing.tokens import TokenCipher, quiet_token_loggers, scrub

log = logging.getLogger(__name__)
quiet_token_loggers()


class PlatformClient(Protocol):
    def secrets(self) -> list[str]: ...

    def refresh(self, refresh_token: str | None, current: str) -> NewTokens: ...

    def publish(
        self, content: PostContent, progress: PostProgress, tokens: ConnectionTokens, account: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class SocialPostRow:
    """A row of `social_posts` (the asset): where one outbox post stands after this run."""

    week: str
    post_id: int
    platform: str
    connection_id: int
    user_id: int
    user_handle: str
    state: str
    remote_id: str | None
    url: str | None
    attempts: int
    last_error: str | None


def post_targets(
    session: Session, featured_user_ids: Sequence[int], platforms: Sequence[SocialPlatform]
) -> list[PostTarget]:
    rows = session.execute(
        select(SocialConnection, User)
        .join(User, User.id == SocialConnection.user_id)
        .where(
            User.id.in_(list(featured_user_ids)),
            User.subscription_tier == SubscriptionTier.CREATOR_PLUS,
            User.opted_out_of_featuring.is_(False),
            SocialConnection.auto_post_weekly.is_(True),
            SocialConnection.platform.in_(list(platforms)),
        )
        .order_by(SocialConnection.id)
    ).all()
    return [PostTarget(c.platform, c.id, u.id, c.account_id) for c, u in rows]


def run_outbox(
    sessions: Callable[[], Session],
    week_start: datetime,
    clients: dict[SocialPlatform, PlatformClient],
    content: PostContent,
    cipher: TokenCipher,
    worker: str,
    attempts: int = 5,
    backoff_base_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Work through the week's open posts until none is left that this worker may claim."""
    seen: list[int] = []
    while True:
        with sessions() as session, session.begin():
            post = claim_next(session, week_start, worker, skip=seen)
        if post is None:
            return
        seen.append(post.id)
        with sessions() as session:
            conn = session.get(SocialConnection, post.connection_id)
            assert conn is not None
            account = conn.account_id
        progress = PostProgress(sessions, post, worker)
        client = clients.get(post.platform)
        if client is None:  # switched off since the row was made: leave it open for when it is back
            progress.release(last_error=f"{post.platform.value} posting is disabled")
            continue
        tokens = ConnectionTokens(sessions, post.connection_id, cipher, client.refresh)

        def attempt(
            client: PlatformClient = client,
            tokens: ConnectionTokens = tokens,
            progress: PostProgress = progress,
            account: str = account,
        ) -> None:
            try:
                client.publish(content, progress, tokens, account)
            except TokenExpiredError:
                tokens.get(force_refresh=True, stale=tokens.current)
                raise TransientPostError("access token refreshed", retry_after_s=0) from None

        what = f"{post.platform.value} post {post.id}"
        try:
            with_backoff(attempt, what, attempts=attempts, base_s=backoff_base_s, sleep=sleep)
            progress.release(last_error=None)
            log.info("%s published: %s", what, progress.post.url or progress.post.remote_id)
        except PermanentPostError as exc:
            message = scrub(str(exc), [*tokens.secrets(), *client.secrets()])
            progress.release(state=PostState.FAILED, last_error=message)
            log.error("%s failed for good: %s", what, message)
        except TransientPostError as exc:
            message = scrub(str(exc), [*tokens.secrets(), *client.secrets()])
            progress.release(last_error=message)
            log.warning("%s not done yet: %s", what, message)
        except LeaseLostError as exc:
            log.warning("%s", exc)


def week_rows(session: Session, week: str, week_start: datetime) -> list[SocialPostRow]:
    rows = session.execute(
        select(SocialPost, SocialConnection, User)
        .join(SocialConnection, SocialConnection.id == SocialPost.connection_id)
        .join(User, User.id == SocialConnection.user_id)
        .where(SocialPost.week_start == week_start)
        .order_by(SocialPost.id)
    ).all()
    return [
        SocialPostRow(
            week,
            p.id,
            p.platform.value,
            p.connection_id,
            u.id,
            u.handle,
            p.state.value,
            p.remote_id,
            p.url,
            p.attempts,
            p.last_error,
        )
        for p, _, u in rows
    ]


def is_final(row: SocialPostRow) -> bool:
    return row.state in {s.value for s in FINAL_STATES}
