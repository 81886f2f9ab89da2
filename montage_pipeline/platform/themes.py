"""An admin's theme for a week (`weekly_themes`), set before the week's run; the run reads it once.

The API's `PUT /v2/weeks/{week}/theme` and the Dagster admin job `theme_week_job` both call these, so
a theme set from either side means the same. Without a setting the run themes the week after its most
featured game (`highlights/theme.py`).
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import WeeklyTheme, utcnow
from montage_pipeline.weeks import parse_week, week_row_key

THEME_MAX_CHARS = 64  # the column's length


class ThemeError(ValueError):
    """A theme the week cannot take (the message says why)."""


def clean_theme(name: str) -> str:
    """A theme as stored: one line, control characters out, whitespace collapsed, 1 to 64 characters."""
    kept = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in name)
    cleaned = " ".join(kept.split())
    if not cleaned or len(cleaned) > THEME_MAX_CHARS:
        raise ThemeError(f"a theme must be 1 to {THEME_MAX_CHARS} characters")
    return cleaned


def theme_setting(session: Session, week: str) -> WeeklyTheme | None:
    """The week's setting row, or None."""
    return session.scalar(select(WeeklyTheme).where(WeeklyTheme.week_start == week_row_key(week)))


def admin_theme(session: Session, week: str) -> str | None:
    """The theme an admin set for the week, or None."""
    row = theme_setting(session, week)
    return row.theme if row else None


def set_theme(session: Session, week: str, theme: str, set_by: str) -> WeeklyTheme:
    """Set (or replace) the week's theme; `ThemeError` for a bad week or theme. Two admins racing meet
    on the unique week: the later write wins."""
    try:
        parse_week(week)
    except ValueError as exc:
        raise ThemeError(str(exc)) from None
    cleaned = clean_theme(theme)
    row = theme_setting(session, week)
    if row is None:
        try:
            with session.begin_nested():
                row = WeeklyTheme(week_start=week_row_key(week), theme=cleaned, set_by=set_by[:128])
                session.add(row)
                session.flush()
            return row
        except IntegrityError:
            row = theme_setting(session, week)
            assert row is not None
    row.theme, row.set_by, row.set_at = cleaned, set_by[:128], utcnow()
    return row


def clear_theme(session: Session, week: str) -> bool:
    """Remove the week's setting (the run goes back to the most featured game); False if none was set."""
    done = session.execute(delete(WeeklyTheme).where(WeeklyTheme.week_start == week_row_key(week)))
    return bool(done.rowcount)  # type: ignore[attr-defined]
