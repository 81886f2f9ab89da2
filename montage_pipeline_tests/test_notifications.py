"""In-app notifications: written with the export, once per featured user, whatever the reruns."""

from __future__ import annotations

from sqlalchemy import func, select

from montage_pipeline.platform.models import Notification, User, WeeklyMontage
from montage_pipeline.weeks import week_row_key
from montage_pipeline_tests.publish_support import CREATORS, WEEK, BuiltWeek, export_week


def _rows(week: BuiltWeek) -> dict[str, int]:
    with week.session() as s:
        found = s.execute(
            select(User.handle, func.count(Notification.id))
            .join(Notification, Notification.user_id == User.id)
            .where(Notification.week_start == week_row_key(WEEK))
            .group_by(User.handle)
        ).all()
    return {handle: count for handle, count in found}


def test_each_featured_user_is_notified_once_across_a_rerun(built_week: BuiltWeek) -> None:
    with built_week.session() as s:
        montage = s.scalars(select(WeeklyMontage).where(WeeklyMontage.week_start == week_row_key(WEEK))).one()
        featured = {
            u.handle for u in s.scalars(select(User).where(User.id.in_(montage.featured_user_ids or [])))
        }
        title, montage_id = montage.title, montage.id
    assert featured and "ember" not in featured and set(featured) <= set(CREATORS)  # ember opted out
    assert _rows(built_week) == dict.fromkeys(featured, 1)  # the shared week's export wrote them
    result = export_week(built_week)  # a rerun of the export
    assert result.success
    (mat,) = result.asset_materializations_for_node("s3_exports")
    assert mat.metadata["notifications_written"].value == 0
    assert _rows(built_week) == dict.fromkeys(featured, 1)
    with built_week.session() as s:
        for note in s.scalars(select(Notification)):
            assert (note.kind, note.montage_id, note.read_at) == ("featured", montage_id, None)
            assert note.text == f"Your clip is in {title}!" and "Apex week" in note.text
