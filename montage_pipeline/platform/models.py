"""The platform's own tables, as this pipeline reads and writes them (SQLAlchemy 2.0 models).

Column names and enum values follow the platform's seed schema so the frontend and the pipeline share
one database. Alembic migrations in `migrations/` create exactly these tables; change both together.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import false
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on Postgres and SQLite alike.

    SQLite drops tzinfo on the way back; this type stores naive UTC and hands back aware UTC, so window
    comparisons behave the same on both backends.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the platform stores UTC, pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SubscriptionTier(enum.StrEnum):
    FREE = "free"
    CREATOR = "creator"
    CREATOR_PLUS = "creator_plus"


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class JobKind(enum.StrEnum):
    UPLOAD = "upload"
    WEEKLY_MONTAGE = "weekly_montage"


class RenderFormat(enum.StrEnum):
    LANDSCAPE = "landscape"
    PORTRAIT = "portrait"


class SocialPlatform(enum.StrEnum):
    YOUTUBE = "youtube"
    TIKTOK = "tiktok"
    INSTAGRAM = "instagram"


class PostState(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    PUBLISHED = "published"
    FAILED = "failed"
    SKIPPED = "skipped"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable across SQLite and Postgres and easy to
    # extend in a migration (no Postgres ENUM type to ALTER).
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        values_callable=lambda e: [m.value for m in e],
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255))
    subscription_tier: Mapped[SubscriptionTier] = mapped_column(
        _enum(SubscriptionTier, "subscription_tier"), default=SubscriptionTier.FREE
    )
    opted_out_of_featuring: Mapped[bool] = mapped_column(Boolean, default=False)
    notifications_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    jobs: Mapped[list[Job]] = relationship(back_populates="user")
    social_connections: Mapped[list[SocialConnection]] = relationship(back_populates="user")


class Job(Base):
    __tablename__ = "jobs"
    # The weekly query filters on status and kind and orders by created_at.
    __table_args__ = (Index("ix_jobs_status_kind_created_at", "status", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.PENDING)
    kind: Mapped[JobKind] = mapped_column(_enum(JobKind, "job_kind"), default=JobKind.UPLOAD)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    game: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(255))
    # Optional scoring metadata from the platform's own clip analysis (free-form JSON, e.g. {"score": 0.8}).
    scoring: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    views: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User | None] = relationship(back_populates="jobs")
    renders: Mapped[list[Render]] = relationship(back_populates="job")


class Render(Base):
    __tablename__ = "renders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    format: Mapped[RenderFormat] = mapped_column(_enum(RenderFormat, "render_format"))
    # Path relative to the platform's storage root (absolute paths are refused when read).
    path: Mapped[str] = mapped_column(Text)
    duration: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    job: Mapped[Job] = relationship(back_populates="renders")


class SocialConnection(Base):
    __tablename__ = "social_connections"
    __table_args__ = (UniqueConstraint("user_id", "platform", "account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    platform: Mapped[SocialPlatform] = mapped_column(_enum(SocialPlatform, "social_platform"))
    account_id: Mapped[str] = mapped_column(String(255))
    # Fernet ciphertexts; the key lives in the environment, never in this database.
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scopes: Mapped[list[str] | None] = mapped_column(JSON)
    auto_post_weekly: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The account's public handle on that platform, without the "@" (posts @mention it); None: unknown.
    # Not to be confused with `social_posts.remote_handle`, an upload's resume handle.
    remote_handle: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship(back_populates="social_connections")


class WeeklyMontage(Base):
    """The seed's fields, plus which export generation they describe; the frontend reads this table.

    `render_path_*` hold object keys in the media store (as `renders.path` holds paths relative to the
    storage root): URLs are minted when the API answers, so they never expire in the table.
    """

    __tablename__ = "weekly_montages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The week's key as an instant: its Monday at 00:00 UTC whatever the weeks' timezone
    # (`weeks.week_row_key`; the week's own window is `weeks.week_window`). Same in the tables below.
    week_start: Mapped[datetime] = mapped_column(UTCDateTime(), unique=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    render_path_landscape: Mapped[str | None] = mapped_column(Text)
    render_path_portrait: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(String(255))
    featured_user_ids: Mapped[list[int] | None] = mapped_column(JSON)
    clip_count: Mapped[int | None] = mapped_column(Integer)
    total_duration: Mapped[float | None] = mapped_column(Float)
    is_featured: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The export generation (exports/{job_id}/{generation}/) the row points at, switched in one
    # transaction once every file of it verified; and its files: name -> key, size_bytes, sha256.
    export_generation: Mapped[str | None] = mapped_column(String(64))
    export_files: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SocialPost(Base):
    """The posting outbox: one row per (week, platform, connection), claimed before anything is sent."""

    __tablename__ = "social_posts"
    __table_args__ = (UniqueConstraint("week_start", "platform", "connection_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week_start: Mapped[datetime] = mapped_column(UTCDateTime())
    platform: Mapped[SocialPlatform] = mapped_column(_enum(SocialPlatform, "social_post_platform"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("social_connections.id"))
    state: Mapped[PostState] = mapped_column(_enum(PostState, "post_state"), default=PostState.PENDING)
    remote_handle: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The lease: a worker owns the row until lease_expires_at; a crashed worker's lease runs out.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Platform-specific resume state (bytes acknowledged, container status...), never a secret.
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MontageNotification(Base):
    """One email per (week, featured user): claimed ('sending') before it is sent, so never twice;
    a failed one is tried again on later ticks until `attempts` reaches the sensor's bound, and so is
    a claim whose sender died mid-send (`claimed_at` long past, still 'sending')."""

    __tablename__ = "montage_notifications"
    __table_args__ = (UniqueConstraint("week_start", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week_start: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16))  # sending | sent | failed
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WeeklyTheme(Base):
    """An admin's theme for a week, set before its run (the run otherwise takes the most featured game)."""

    __tablename__ = "weekly_themes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week_start: Mapped[datetime] = mapped_column(UTCDateTime(), unique=True)
    theme: Mapped[str] = mapped_column(String(64))
    set_by: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Notification(Base):
    """An in-app notification (the frontend's bell), one per (user, week, kind): a rerun writes none."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("user_id", "week_start", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))  # "featured": your clip is in the week's montage
    week_start: Mapped[datetime] = mapped_column(UTCDateTime())
    montage_id: Mapped[int | None] = mapped_column(ForeignKey("weekly_montages.id"))
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PostEngagement(Base):
    """A post's counts as the platform reported them on one UTC day (one row per post and day: a rerun
    of the day replaces its row). A day whose read failed keeps the error and no counts."""

    __tablename__ = "post_engagement"
    __table_args__ = (
        UniqueConstraint("social_post_id", "day"),
        Index("ix_post_engagement_week_start", "week_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    social_post_id: Mapped[int] = mapped_column(ForeignKey("social_posts.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    remote_id: Mapped[str | None] = mapped_column(String(255))
    week_start: Mapped[datetime] = mapped_column(UTCDateTime())
    day: Mapped[date] = mapped_column(Date)
    views: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)
    comments: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EngagementExposure(Base):
    """What a week's montage featured, by game, creator and moment type, with its share of the
    montage's screen time: how the engagement prior attributes a week's views to what was in it."""

    __tablename__ = "engagement_exposure"
    __table_args__ = (UniqueConstraint("week_start", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week_start: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))  # "game" | "creator" | "moment"
    value: Mapped[str] = mapped_column(String(128))
    share: Mapped[float] = mapped_column(Float)  # of the montage's clip seconds, 0..1
    clips: Mapped[int] = mapped_column(Integer)
