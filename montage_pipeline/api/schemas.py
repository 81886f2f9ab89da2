"""The API's request and response bodies."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel, Field, field_validator

from montage_pipeline.platform.montage_record import TITLE_MAX_CHARS, clean_title
from montage_pipeline.platform.themes import THEME_MAX_CHARS, ThemeError, clean_theme
from montage_pipeline.weeks import FIRST_WEEK


class Montage(BaseModel):
    id: int
    week_start: date
    title: str | None
    clip_count: int | None
    total_duration: float | None
    featured_user_ids: list[int]
    is_featured: bool
    # URLs minted for this answer (presigned, or the public base URL + key): fetch them soon.
    render_path_landscape: str | None
    render_path_portrait: str | None
    created_at: datetime


class MontageList(BaseModel):
    """One page of montages, newest week first."""

    items: list[Montage]
    count: int = Field(description="How many items this page holds.")
    total: int = Field(description="How many montages match the filter, over all pages.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page. Opaque: do not parse it."
    )


class FeatureBody(BaseModel):
    is_featured: bool


class TitleBody(BaseModel):
    title: str = Field(min_length=1, max_length=TITLE_MAX_CHARS)

    @field_validator("title")
    @classmethod
    def not_blank(cls, value: str) -> str:
        # The admin jobs' rule: a refused title is a 422 here, before the route touches the row.
        return clean_title(value)


class TriggerBody(BaseModel):
    week_start: date

    @field_validator("week_start")
    @classmethod
    def a_past_monday(cls, value: date) -> date:
        if value.weekday() != 0:
            raise ValueError(f"{value} is a {value:%A}: weeks start on Monday")
        if value > datetime.now(UTC).date():
            raise ValueError(f"{value} is in the future")
        if value < date.fromisoformat(FIRST_WEEK):
            raise ValueError(f"{value} is before the first week, {FIRST_WEEK}")
        return value


class Triggered(BaseModel):
    run_id: str
    week_start: date


class ThemeBody(BaseModel):
    theme: str = Field(min_length=1, max_length=THEME_MAX_CHARS, examples=["Doom"])
    set_by: str = Field(default="api", max_length=128, description="Who set it, for the record.")

    @field_validator("theme")
    @classmethod
    def a_theme(cls, value: str) -> str:
        try:
            return clean_theme(value)
        except ThemeError as exc:
            raise ValueError(str(exc)) from None


class WeekThemeSetting(BaseModel):
    """An admin's theme for a week; the week's next run uses it instead of the most featured game."""

    week_start: date
    theme: str
    set_by: str
    set_at: datetime


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(description="\"featured\": the user's clip is in the week's montage.")
    week_start: date
    montage_id: int | None
    text: str
    payload: dict[str, object] | None
    created_at: datetime
    read_at: datetime | None


class NotificationList(BaseModel):
    items: list[NotificationOut]
    unread: int = Field(description="How many of the user's notifications are unread, over all of them.")
