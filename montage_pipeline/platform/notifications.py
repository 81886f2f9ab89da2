"""In-app notifications (`notifications`): what the frontend's bell shows a user, read through the API.

The export writes one "featured" row per featured user in the transaction that publishes the week's
montage (`notify_featured`), so a published week always has them and a rerun adds none: the row is
unique per (user, week, kind). Users who turned notifications off (`users.notifications_opt_out`) get
none, as they get no email.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import Notification, User, WeeklyMontage, utcnow

FEATURED = "featured"


def notify_featured(session: Session, montage: WeeklyMontage, user_ids: Sequence[int]) -> list[int]:
    """A "featured" notification for each of `user_ids` who has none for the montage's week yet (and
    has not opted out); returns the users notified now. The caller holds the week's lock."""
    week_start = montage.week_start
    done = set(
        session.scalars(
            select(Notification.user_id).where(
                Notification.week_start == week_start, Notification.kind == FEATURED
            )
        )
    )
    wanted = [u for u in dict.fromkeys(user_ids) if u not in done]
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))} if wanted else {}
    notified = []
    for user_id in wanted:
        user = users.get(user_id)
        if user is None or user.notifications_opt_out:
            continue
        session.add(
            Notification(
                user_id=user_id,
                kind=FEATURED,
                week_start=week_start,
                montage_id=montage.id,
                text=f"Your clip is in {montage.title}!",
                payload={
                    "montage_id": montage.id,
                    "week_start": f"{week_start:%Y-%m-%d}",
                    "title": montage.title,
                },
            )
        )
        notified.append(user_id)
    session.flush()
    return notified


def user_notifications(
    session: Session, user_id: int, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """The user's notifications, newest first."""
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(
        session.scalars(query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit))
    )


def mark_read(
    session: Session, user_id: int, notification_id: int, when: datetime | None = None
) -> Notification | None:
    """Mark the user's notification read (once: a second call keeps the first time); None if the user
    has no such notification."""
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        return None
    if row.read_at is None:
        row.read_at = when or utcnow()
    return row
