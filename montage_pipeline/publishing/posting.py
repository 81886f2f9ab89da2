"""Posting one week: who gets a post, and the outbox worker loop that drives each platform client.

Who: the featured users of the week on Creator+ who have not opted out of featuring, through each of
their connections with `auto_post_weekly` on and a stored access token, for the platforms that are
enabled. Each post is attempted with backoff; a permanent refusal ends it FAILED with the reason, a
transient failure leaves it open (the step's retry, or the next run, resumes it from the saved handle).

Posts are isolated from each other: a connection whose token is missing or no longer decrypts ends
its own post FAILED with the reason `reconnect`, and any other unexpected error is recorded on that
post's row while the loop goes on to the next one. Every claim counts as an attempt; a post still open
after `max_attempts` of them is FAILED with its last error, so nothing stays pending forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from montage_pipeline.publishing.credentials import ConnectionTokens, MissingTokenError, NewTokens
from montage_pipeline.publishing.errors import PermanentPostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.outbox import (
    DEFAULT_LEASE,
    FINAL_STATES,
    ClaimedPost,
    LeaseLostError,
    PostProgress,
    PostTarget,
    claim_next,
)
from montage_pipeline.publishing.tokens import TokenCipher, TokenKeyError, quiet_token_loggers, scrub

log = logging.getLogger(__name__)
quiet_token_loggers()

# Claims of one post (each step run and each step retry is one) before it is FAILED for good.
MAX_ATTEMPTS = 10
RECONNECT = "reconnect"  # the reason of a post that only the user reconnecting the account can fix


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
            SocialConnection.access_token_encrypted.is_not(None),  # disconnected: nothing to post with
        )
        .order_by(SocialConnection.id)
    ).all()
    return [PostTarget(c.platform, c.id, u.id, c.account_id) for c, u in rows]


def run_outbox(
    sessions: Callable[[], Session],
    week_start: datetime,
    clients: dict[SocialPlatform, PlatformClient],
    content: PostContent | Mapping[SocialPlatform, PostContent],
    cipher: TokenCipher,
    worker: str,
    attempts: int = 5,
    backoff_base_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    lease: timedelta = DEFAULT_LEASE,
) -> None:
    """Work through the week's open posts until none is left that this worker may claim.

    `attempts` are tries with backoff within this claim; `max_attempts` bounds the claims of a post.
    `content` is what every platform posts, or each platform's own (the cut chosen for it).
    """
    seen: list[int] = []
    while True:
        with sessions() as session, session.begin():
            post = claim_next(session, week_start, worker, skip=seen, lease=lease)
        if post is None:
            return
        seen.append(post.id)
        progress = PostProgress(sessions, post, worker, lease)
        what = f"{post.platform.value} post {post.id}"
        client = clients.get(post.platform)
        try:
            if client is None:  # switched off since the row was made: leave it open for when it is back
                # Not an attempt: nothing was tried, so the claim does not count towards the cap.
                progress.release(
                    last_error=f"{post.platform.value} posting is disabled", attempts=post.attempts - 1
                )
                continue
            if post.attempts > max_attempts:  # earlier workers stopped without recording an outcome
                last = post.last_error or "none recorded (the worker stopped)"
                progress.release(
                    state=PostState.FAILED, last_error=f"gave up after {max_attempts} attempts; last: {last}"
                )
                log.error("%s failed for good after %d attempts: %s", what, max_attempts, last)
                continue
            _post_one(
                sessions,
                post,
                progress,
                client,
                content if isinstance(content, PostContent) else content[post.platform],
                cipher,
                attempts,
                backoff_base_s,
                sleep,
                max_attempts,
            )
        except LeaseLostError as exc:  # another worker holds the post now: back off, leave it to them
            log.warning("%s", exc)


def _post_one(
    sessions: Callable[[], Session],
    post: ClaimedPost,
    progress: PostProgress,
    client: PlatformClient,
    content: PostContent,
    cipher: TokenCipher,
    attempts: int,
    backoff_base_s: float,
    sleep: Callable[[float], None],
    max_attempts: int,
) -> None:
    """Publish one claimed post and record how it ended; raises only `LeaseLostError`."""
    what = f"{post.platform.value} post {post.id}"
    tokens = ConnectionTokens(sessions, post.connection_id, cipher, client.refresh)

    def clean(exc: BaseException) -> str:
        return scrub(str(exc), [*tokens.secrets(), *client.secrets()])

    def attempt() -> None:
        with sessions() as session:
            conn = session.get(SocialConnection, post.connection_id)
            if conn is None:
                raise MissingTokenError(f"connection {post.connection_id} no longer exists")
            account = conn.account_id
        try:
            client.publish(content, progress, tokens, account)
        except TokenExpiredError:
            tokens.get(force_refresh=True, stale=tokens.current)
            raise TransientPostError("access token refreshed", retry_after_s=0) from None

    try:
        with_backoff(attempt, what, attempts=attempts, base_s=backoff_base_s, sleep=sleep)
        progress.release(last_error=None)
        log.info("%s published: %s", what, progress.post.url or progress.post.remote_id)
    except LeaseLostError:
        raise
    except PermanentPostError as exc:
        message = clean(exc)
        progress.release(state=PostState.FAILED, last_error=message)
        log.error("%s failed for good: %s", what, message)
    except (MissingTokenError, TokenKeyError) as exc:
        # Only the user can fix this (connect the account again): no retry, whatever the others do.
        message = f"{RECONNECT}: {clean(exc)}"
        progress.release(state=PostState.FAILED, last_error=message)
        log.error("%s needs the account reconnected: %s", what, message)
    except TransientPostError as exc:
        _not_done(progress, what, clean(exc), max_attempts)
    except Exception as exc:  # one post's surprise must not hold up the other creators' posts
        _not_done(progress, what, f"unexpected {type(exc).__name__}: {clean(exc)}", max_attempts)


def _not_done(progress: PostProgress, what: str, message: str, max_attempts: int) -> None:
    """Leave the post open for a later attempt, or end it FAILED once its attempts are used up."""
    if progress.post.attempts >= max_attempts:
        progress.release(
            state=PostState.FAILED, last_error=f"gave up after {max_attempts} attempts; last: {message}"
        )
        log.error("%s failed for good after %d attempts: %s", what, max_attempts, message)
    else:
        progress.release(last_error=message)
        log.warning(
            "%s not done yet (attempt %d/%d): %s", what, progress.post.attempts, max_attempts, message
        )


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
