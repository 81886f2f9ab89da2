"""An admin's say over posts the outbox stopped on: list them, then retry one or record what was found.

The outbox never guesses when a post's outcome is unknown (a YouTube upload whose answer was lost and
whose session expired ends FAILED with `needs_admin`): a second upload could post the week twice. The
admin looks at the channel and settles it here: `mark_published` when the video is there (no upload),
`retry` when it is not (the next `social_posts` run posts it from scratch). Neither touches a post a
live worker holds or one already published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import PostState, SocialConnection, SocialPlatform, SocialPost
from montage_pipeline.publishing.outbox import OPEN_STATES
from montage_pipeline.publishing.youtube import WATCH_URL

WATCH_URLS = {SocialPlatform.YOUTUBE: WATCH_URL}  # the platforms whose post address follows from its id


class PostAdminError(ValueError):
    """The post cannot be settled that way; the message says why."""


@dataclass(frozen=True, slots=True)
class PostLine:
    id: int
    week: str
    platform: str
    account: str
    state: str
    attempts: int
    remote_id: str | None
    last_error: str | None


def list_posts(
    session: Session, week_start: datetime | None = None, everything: bool = False
) -> list[PostLine]:
    """The week's posts (or every week's) that did not end published, oldest first; all with `everything`."""
    query = select(SocialPost, SocialConnection.account_id).join(
        SocialConnection, SocialConnection.id == SocialPost.connection_id
    )
    if week_start is not None:
        query = query.where(SocialPost.week_start == week_start)
    if not everything:
        query = query.where(SocialPost.state != PostState.PUBLISHED)
    rows = session.execute(query.order_by(SocialPost.week_start, SocialPost.id)).all()
    return [
        PostLine(
            p.id,
            f"{p.week_start:%Y-%m-%d}",
            p.platform.value,
            account,
            p.state.value,
            p.attempts,
            p.remote_id,
            p.last_error,
        )
        for p, account in rows
    ]


def _settleable(session: Session, post_id: int, now: datetime) -> SocialPost:
    post = session.get(SocialPost, post_id, with_for_update=True)
    if post is None:
        raise PostAdminError(f"no post {post_id}")
    if post.state == PostState.PUBLISHED:
        raise PostAdminError(f"post {post_id} is already published ({post.url or post.remote_id})")
    held = post.lease_expires_at is not None and post.lease_expires_at > now and post.claimed_by
    if post.state in OPEN_STATES and held:
        raise PostAdminError(
            f"post {post_id} is being worked on by {post.claimed_by} until "
            f"{post.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC; settle it after that"
        )
    return post


def retry(session: Session, post_id: int, now: datetime | None = None) -> SocialPost:
    """The admin found no post on the platform: the next run posts it anew (a fresh upload)."""
    post = _settleable(session, post_id, now or datetime.now(UTC))
    post.state = PostState.PENDING
    post.remote_handle = post.remote_id = post.url = None
    post.progress = None
    post.attempts = 0
    post.last_error = None
    post.claimed_by = None
    post.lease_expires_at = None
    return post


def mark_published(
    session: Session, post_id: int, remote_id: str, url: str | None = None, now: datetime | None = None
) -> SocialPost:
    """The admin found the post on the platform: record it, so no run uploads it again."""
    if not remote_id.strip():
        raise PostAdminError("name the id of the post found on the platform")
    post = _settleable(session, post_id, now or datetime.now(UTC))
    template = WATCH_URLS.get(post.platform)
    post.state = PostState.PUBLISHED
    post.remote_id = remote_id.strip()
    post.url = url or (template.format(id=post.remote_id) if template else None)
    post.last_error = None
    post.claimed_by = None
    post.lease_expires_at = None
    return post
