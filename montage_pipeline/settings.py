"""Every setting montage_pipeline reads from the environment, in one typed object, read once.

`load_settings()` is the only place that reads this project's environment variables (`ENV_VARS`, each
documented in the README's table; a test keeps both lists equal). It checks every value when it reads
it and fails naming the variable, so a typo stops the code location at load, not a step hours later.
The object is then passed down: the code location builds its resources and schedule from it, the
assets that need a setting get it as the `settings` resource and record its non-secret values
(`Settings.snapshot()`) with what they materialize, the CLI and the read API take it from their
entry point.

Secrets (`Secret`) keep their value out of `repr`, the snapshot and the logs; Dagster resources receive
them as `dg.EnvVar(secret.var)`, resolved only inside a run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from montage_pipeline.profiles import Profile, ProfileError, load_profile
from montage_pipeline.rules import RULES

# The cut each platform posts by default, and the cuts each may post: the long cut is landscape only
# (YouTube); the short is portrait (TikTok, Reels), the main cut has both aspects.
DEFAULT_POST_CUTS = {"youtube": "main", "tiktok": "short", "instagram": "short"}
ALLOWED_POST_CUTS = {"youtube": ("main", "long"), "tiktok": ("short", "main"), "instagram": ("short", "main")}

DEFAULT_TARGET_DURATION_S = RULES.target_duration_s
MB = 1_000_000

# The variables Dagster itself reads (the instance), documented beside ours in the README's table.
DAGSTER_INSTANCE_VARS = (
    "DAGSTER_HOME",
    "DAGSTER_PG_USERNAME",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_DB",
)


class SettingsError(ProfileError, ValueError):
    """A variable holds a value montage_pipeline cannot use; the message names it and what it accepts."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret from the environment: `var` names it, `value` never shows in repr, snapshots or logs."""

    var: str
    value: str = field(default="", repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return f"Secret({self.var}, {'set' if self.value else 'unset'})"


@dataclass(frozen=True, slots=True)
class ClipLimits:
    """What verification accepts. The defaults admit any real gaming clip up to 4K and 10 minutes.

    Each limit has a `MONTAGE_CLIP_*` variable (`LIMIT_ENV_VARS`); `Settings.clip_limits` holds the
    deployment's limits, the selection asset passes them to verification.
    """

    max_file_bytes: int = 4_000 * MB  # checked before the file is opened
    max_side_px: int = 4096  # the longer side of the coded frame
    max_pixels: int = 4096 * 2304  # width x height: a decoded 4:2:0 frame is 1.5 bytes per pixel
    max_duration_s: float = 600.0  # claimed duration
    max_bytes_per_s: float = 20 * MB  # 160 Mbit/s over the claimed duration; phone 4K60 is ~100
    min_decoded_fps: float = 2.0  # frames actually decoded per second in the start and tail windows

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClipLimits:
        """The defaults, overridden by whichever `MONTAGE_CLIP_*` variables (`LIMIT_ENV_VARS`) are set."""
        env = os.environ if env is None else env
        values: dict[str, float] = {}
        for name, var in LIMIT_ENV_VARS.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                values[name] = float(raw)
            except ValueError as exc:
                raise SettingsError(f"{var}={raw!r} is not a number") from exc
            if values[name] <= 0:
                raise SettingsError(f"{var}={raw!r} must be positive")
        defaults = cls()
        return cls(
            max_file_bytes=int(values.get("max_file_bytes", defaults.max_file_bytes)),
            max_side_px=int(values.get("max_side_px", defaults.max_side_px)),
            max_pixels=int(values.get("max_pixels", defaults.max_pixels)),
            max_duration_s=values.get("max_duration_s", defaults.max_duration_s),
            max_bytes_per_s=values.get("max_bytes_per_s", defaults.max_bytes_per_s),
            min_decoded_fps=values.get("min_decoded_fps", defaults.min_decoded_fps),
        )


LIMIT_ENV_VARS = {
    "max_file_bytes": "MONTAGE_CLIP_MAX_FILE_BYTES",
    "max_side_px": "MONTAGE_CLIP_MAX_SIDE_PX",
    "max_pixels": "MONTAGE_CLIP_MAX_PIXELS",
    "max_duration_s": "MONTAGE_CLIP_MAX_DURATION_S",
    "max_bytes_per_s": "MONTAGE_CLIP_MAX_BYTES_PER_S",
    "min_decoded_fps": "MONTAGE_CLIP_MIN_DECODED_FPS",
}


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    hour: int = 2  # MONTAGE_SCHEDULE_HOUR, in the weeks' timezone
    minute: int = 0  # MONTAGE_SCHEDULE_MINUTE
    default_status: str = "STOPPED"  # MONTAGE_SCHEDULE_DEFAULT_STATUS; RUNNING in production


@dataclass(frozen=True, slots=True)
class YouTubeSettings:
    enabled: bool = False
    client_id: Secret = Secret("YOUTUBE_CLIENT_ID")
    client_secret: Secret = Secret("YOUTUBE_CLIENT_SECRET")
    api_url: str | None = None  # None: the real service
    token_url: str | None = None
    privacy: str = "unlisted"
    publish_at: str = ""


@dataclass(frozen=True, slots=True)
class TikTokSettings:
    enabled: bool = False
    client_key: Secret = Secret("TIKTOK_CLIENT_KEY")
    client_secret: Secret = Secret("TIKTOK_CLIENT_SECRET")
    api_url: str | None = None
    mode: str = "inbox"
    privacy_level: str = "SELF_ONLY"


@dataclass(frozen=True, slots=True)
class InstagramSettings:
    enabled: bool = False
    graph_url: str | None = None
    refresh_url: str | None = None


@dataclass(frozen=True, slots=True)
class MailSettings:
    host: str = ""  # empty: creator emails are off
    port: int = 587
    username: str = ""
    password: Secret = Secret("MONTAGE_SMTP_PASSWORD")
    sender: str = "highlights@example.com"
    starttls: bool = True
    ca_file: str = ""  # a private relay's CA; empty: the system's


@dataclass(frozen=True, slots=True)
class ApiSettings:
    admin_token: Secret = Secret("MONTAGE_ADMIN_TOKEN")
    dagster_graphql_url: str | None = None
    code_location: str = "montage_pipeline"
    url_expires_s: int = 24 * 3600  # presigned links handed out by the read API


# The broker every Celery worker and the run's orchestrator use unless MONTAGE_CELERY_BROKER says
# otherwise: the RabbitMQ these machines run (guest/guest).
DEFAULT_CELERY_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Where a run's steps execute: `multiprocess` (Dagster's default: one process per step on the run's
    machine), `celery` (each step a task on Dagster's Celery workers, through the broker) or `k8s` (each
    step a Kubernetes Job of its own, `dagster-k8s`'s executor: the `[k8s]` extra, deploy/helm/)."""

    kind: str = "multiprocess"
    celery_broker: Secret = Secret("MONTAGE_CELERY_BROKER")  # may carry a password
    celery_backend: str = "rpc://"
    celery_queue: str = (
        "dagster"  # the queue the workers listen on (`-q`): one per deployment on a shared broker
    )
    # `in_step`: a week's clips analysed inside one step (local worker processes); `per_clip`: one step
    # per clip, so the executor's workers share the week (see docs/architecture.md, "Analysis fan-out").
    analysis_fanout: str = "in_step"
    # 0: the render is one step; n >= 2: the main cut rendered in up to n chunks, a step each (split at
    # hard cuts, joined by stream copy), so workers share it (docs/architecture.md, "Chunked render").
    render_chunks: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    """The deployment (`profile`) and every other setting, checked; build it with `load_settings`."""

    profile: Profile
    home: Path  # MONTAGE_HOME: the data folder (embedded data, the media cache)
    week_timezone: str = "UTC"
    target_duration_s: float = DEFAULT_TARGET_DURATION_S
    short_duration_s: float = 30.0  # the short cut (portrait), 15–60 s
    # Which cut each platform posts: "main", "short" or (YouTube only) "long" (MONTAGE_POST_CUTS).
    post_cuts: tuple[tuple[str, str], ...] = tuple(DEFAULT_POST_CUTS.items())
    music_library: Path | None = None  # None: generated music
    public_base_url: str | None = None  # None: presigned links
    clip_limits: ClipLimits = ClipLimits()
    schedule: ScheduleSettings = ScheduleSettings()
    youtube: YouTubeSettings = YouTubeSettings()
    tiktok: TikTokSettings = TikTokSettings()
    instagram: InstagramSettings = InstagramSettings()
    token_keys: Secret = Secret("MONTAGE_TOKEN_KEYS")
    mail: MailSettings = MailSettings()
    alert_webhook: Secret = Secret("MONTAGE_ALERT_WEBHOOK_URL")
    api: ApiSettings = ApiSettings()
    executor: ExecutorSettings = ExecutorSettings()

    @property
    def posting_enabled(self) -> bool:
        return self.youtube.enabled or self.tiktok.enabled or self.instagram.enabled

    def snapshot(self) -> dict[str, object]:
        """The non-secret values, keyed by variable (as the README's table names them), for a run's
        metadata; a secret shows only whether it is set."""
        p, s3 = self.profile, self.profile.s3
        values: dict[str, object] = {
            "MONTAGE_PROFILE": p.name,
            "MONTAGE_HOME": str(self.home),
            "MONTAGE_STORAGE_ROOT": str(p.storage_root),
            "MONTAGE_S3_BUCKET": s3.bucket if s3 else None,
            "MONTAGE_S3_PREFIX": s3.prefix if s3 else None,
            "MONTAGE_S3_ENDPOINT_URL": s3.endpoint_url if s3 else None,
            "MONTAGE_S3_REGION": s3.region_name if s3 else None,
            "MONTAGE_WEEK_TIMEZONE": self.week_timezone,
            "WEEKLY_MONTAGE_DURATION": self.target_duration_s,
            "MONTAGE_SHORT_DURATION": self.short_duration_s,
            "MONTAGE_POST_CUTS": ",".join(f"{k}={v}" for k, v in self.post_cuts),
            "MONTAGE_MUSIC_LIBRARY": str(self.music_library) if self.music_library else None,
            "MONTAGE_PUBLIC_BASE_URL": self.public_base_url,
            "MONTAGE_SCHEDULE_HOUR": self.schedule.hour,
            "MONTAGE_SCHEDULE_MINUTE": self.schedule.minute,
            "MONTAGE_SCHEDULE_DEFAULT_STATUS": self.schedule.default_status,
            "YOUTUBE_API_ENABLED": self.youtube.enabled,
            "TIKTOK_API_ENABLED": self.tiktok.enabled,
            "INSTAGRAM_API_ENABLED": self.instagram.enabled,
            "YOUTUBE_PRIVACY": self.youtube.privacy,
            "TIKTOK_POST_MODE": self.tiktok.mode,
            "MONTAGE_SMTP_HOST": self.mail.host or None,
            "MONTAGE_EXECUTOR": self.executor.kind,
            "MONTAGE_CELERY_BACKEND": self.executor.celery_backend,
            "MONTAGE_CELERY_QUEUE": self.executor.celery_queue,
            "MONTAGE_ANALYSIS_FANOUT": self.executor.analysis_fanout,
            "MONTAGE_RENDER_CHUNKS": self.executor.render_chunks,
            **{var: getattr(self.clip_limits, name) for name, var in LIMIT_ENV_VARS.items()},
        }
        for secret in (self.token_keys, self.mail.password, self.alert_webhook, self.executor.celery_broker):
            values[secret.var] = "set" if secret else "unset"
        return values


# Every variable `load_settings` may read; the README's table documents exactly these (and
# `DAGSTER_INSTANCE_VARS`), `test_settings.py` checks both.
ENV_VARS = (
    "MONTAGE_PROFILE",
    "MONTAGE_HOME",
    "MONTAGE_STORAGE_ROOT",
    "MONTAGE_DATABASE_URL",
    "MONTAGE_TABLES_DATABASE_URL",
    "MONTAGE_S3_BUCKET",
    "MONTAGE_S3_ENDPOINT_URL",
    "MONTAGE_S3_REGION",
    "MONTAGE_S3_PREFIX",
    "MONTAGE_WEEK_TIMEZONE",
    "WEEKLY_MONTAGE_DURATION",
    "MONTAGE_SHORT_DURATION",
    "MONTAGE_POST_CUTS",
    "MONTAGE_MUSIC_LIBRARY",
    "MONTAGE_PUBLIC_BASE_URL",
    "MONTAGE_URL_EXPIRES_S",
    "MONTAGE_SCHEDULE_HOUR",
    "MONTAGE_SCHEDULE_MINUTE",
    "MONTAGE_SCHEDULE_DEFAULT_STATUS",
    *LIMIT_ENV_VARS.values(),
    "YOUTUBE_API_ENABLED",
    "TIKTOK_API_ENABLED",
    "INSTAGRAM_API_ENABLED",
    "MONTAGE_TOKEN_KEYS",
    "YOUTUBE_CLIENT_ID",
    "YOUTUBE_CLIENT_SECRET",
    "TIKTOK_CLIENT_KEY",
    "TIKTOK_CLIENT_SECRET",
    "YOUTUBE_PRIVACY",
    "YOUTUBE_PUBLISH_AT",
    "TIKTOK_POST_MODE",
    "TIKTOK_PRIVACY_LEVEL",
    "YOUTUBE_API_URL",
    "GOOGLE_TOKEN_URL",
    "TIKTOK_API_URL",
    "INSTAGRAM_GRAPH_URL",
    "INSTAGRAM_REFRESH_URL",
    "MONTAGE_ADMIN_TOKEN",
    "DAGSTER_GRAPHQL_URL",
    "DAGSTER_CODE_LOCATION",
    "MONTAGE_ALERT_WEBHOOK_URL",
    "MONTAGE_SMTP_HOST",
    "MONTAGE_SMTP_PORT",
    "MONTAGE_SMTP_USERNAME",
    "MONTAGE_SMTP_PASSWORD",
    "MONTAGE_SMTP_FROM",
    "MONTAGE_SMTP_STARTTLS",
    "MONTAGE_SMTP_CA_FILE",
    "MONTAGE_EXECUTOR",
    "MONTAGE_CELERY_BROKER",
    "MONTAGE_CELERY_BACKEND",
    "MONTAGE_CELERY_QUEUE",
    "MONTAGE_ANALYSIS_FANOUT",
    "MONTAGE_RENDER_CHUNKS",
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class _Env:
    """The environment, read through typed getters that name the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, var: str, default: str = "") -> str:
        assert var in ENV_VARS, f"{var} is read but not in ENV_VARS (and the README's table)"
        return self.env.get(var, "").strip() or default

    def optional(self, var: str) -> str | None:
        return self.text(var) or None

    def flag(self, var: str, default: bool = False) -> bool:
        raw = self.text(var).lower()
        if not raw:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(f"{var}={raw!r} is not a yes/no value (use true or false)")

    def number(self, var: str, default: int, low: int, high: int, unit: str) -> int:
        raw = self.text(var)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise SettingsError(f"{var}={raw!r} is not a whole number of {unit}") from exc
        if not low <= value <= high:
            raise SettingsError(f"{var}={value} is outside {low}..{high} {unit}")
        return value

    def choice(self, var: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
        raw = self.text(var, default)
        raw = raw.upper() if upper else raw
        if raw not in choices:
            raise SettingsError(f"{var}={raw!r} is not one of: {', '.join(choices)}")
        return raw

    def secret(self, var: str, needed_by: str | None = None) -> Secret:
        """`needed_by` names what needs it: then a missing secret fails at load."""
        value = self.env.get(var, "")
        assert var in ENV_VARS, f"{var} is read but not in ENV_VARS (and the README's table)"
        if needed_by and not value:
            raise SettingsError(f"{needed_by} needs {var} set (see README.md, 'Environment variables')")
        return Secret(var, value)


def _timezone(env: _Env) -> str:
    var = "MONTAGE_WEEK_TIMEZONE"
    name = env.text(var, "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"{var}={name!r} is not an IANA timezone name") from exc
    return name


def _target_duration(env: _Env) -> float:
    var = "WEEKLY_MONTAGE_DURATION"
    raw = env.text(var)
    if not raw:
        return DEFAULT_TARGET_DURATION_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{var}={raw!r} is not a number of seconds") from exc
    if not 15 <= value <= 3600:
        raise SettingsError(f"{var}={value:g} is outside 15..3600 seconds")
    return value


def parse_post_cuts(raw: str, var: str = "MONTAGE_POST_CUTS") -> tuple[tuple[str, str], ...]:
    """`youtube=main,tiktok=short,instagram=short` (any subset; the rest keep their default)."""
    cuts = dict(DEFAULT_POST_CUTS)
    for item in filter(None, (part.strip() for part in raw.split(","))):
        platform, sep, cut = (x.strip().lower() for x in item.partition("="))
        if not sep or platform not in ALLOWED_POST_CUTS:
            raise SettingsError(
                f"{var}: {item!r} is not platform=cut with a platform among {', '.join(ALLOWED_POST_CUTS)}"
            )
        if cut not in ALLOWED_POST_CUTS[platform]:
            allowed = ", ".join(ALLOWED_POST_CUTS[platform])
            raise SettingsError(f"{var}: {platform} cannot post the {cut!r} cut (one of: {allowed})")
        cuts[platform] = cut
    return tuple(cuts.items())


def _music_library(env: _Env) -> Path | None:
    var = "MONTAGE_MUSIC_LIBRARY"
    raw = env.text(var)
    if not raw:
        return None
    folder = Path(raw).expanduser()
    if not folder.is_dir():
        raise SettingsError(f"{var}={raw!r} is not a folder")
    return folder


def _youtube(env: _Env) -> YouTubeSettings:
    if not env.flag("YOUTUBE_API_ENABLED"):
        return YouTubeSettings()
    on = "YOUTUBE_API_ENABLED"
    return YouTubeSettings(
        enabled=True,
        client_id=env.secret("YOUTUBE_CLIENT_ID", on),
        client_secret=env.secret("YOUTUBE_CLIENT_SECRET", on),
        api_url=env.optional("YOUTUBE_API_URL"),
        token_url=env.optional("GOOGLE_TOKEN_URL"),
        privacy=env.choice("YOUTUBE_PRIVACY", "unlisted", ("unlisted", "private", "public")),
        publish_at=env.text("YOUTUBE_PUBLISH_AT"),
    )


def _tiktok(env: _Env) -> TikTokSettings:
    if not env.flag("TIKTOK_API_ENABLED"):
        return TikTokSettings()
    on = "TIKTOK_API_ENABLED"
    return TikTokSettings(
        enabled=True,
        client_key=env.secret("TIKTOK_CLIENT_KEY", on),
        client_secret=env.secret("TIKTOK_CLIENT_SECRET", on),
        api_url=env.optional("TIKTOK_API_URL"),
        mode=env.choice("TIKTOK_POST_MODE", "inbox", ("inbox", "direct")),
        privacy_level=env.text("TIKTOK_PRIVACY_LEVEL", "SELF_ONLY"),
    )


def _instagram(env: _Env) -> InstagramSettings:
    if not env.flag("INSTAGRAM_API_ENABLED"):
        return InstagramSettings()
    return InstagramSettings(
        enabled=True,
        graph_url=env.optional("INSTAGRAM_GRAPH_URL"),
        refresh_url=env.optional("INSTAGRAM_REFRESH_URL"),
    )


def _mail(env: _Env) -> MailSettings:
    return MailSettings(
        host=env.text("MONTAGE_SMTP_HOST"),
        port=env.number("MONTAGE_SMTP_PORT", 587, 1, 65535, "(a TCP port)"),
        username=env.text("MONTAGE_SMTP_USERNAME"),
        password=env.secret("MONTAGE_SMTP_PASSWORD"),
        sender=env.text("MONTAGE_SMTP_FROM", "highlights@example.com"),
        starttls=env.flag("MONTAGE_SMTP_STARTTLS", default=True),
        ca_file=env.text("MONTAGE_SMTP_CA_FILE"),
    )


def _executor(env: _Env) -> ExecutorSettings:
    return ExecutorSettings(
        kind=env.choice("MONTAGE_EXECUTOR", "multiprocess", ("multiprocess", "celery", "k8s")),
        celery_broker=env.secret("MONTAGE_CELERY_BROKER"),
        celery_backend=env.text("MONTAGE_CELERY_BACKEND", "rpc://"),
        celery_queue=env.text("MONTAGE_CELERY_QUEUE", "dagster"),
        analysis_fanout=env.choice("MONTAGE_ANALYSIS_FANOUT", "in_step", ("in_step", "per_clip")),
        render_chunks=env.number("MONTAGE_RENDER_CHUNKS", 0, 0, 64, "chunks"),
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting from `env` (default: this process's environment), once.

    Raises `SettingsError` (a `ProfileError`) naming the first variable with a bad value.
    """
    raw = os.environ if env is None else env
    read = _Env(raw)
    profile = load_profile(raw)
    youtube, tiktok, instagram = _youtube(read), _tiktok(read), _instagram(read)
    posting = youtube.enabled or tiktok.enabled or instagram.enabled
    default_status = "RUNNING" if profile.name == "production" else "STOPPED"
    return Settings(
        profile=profile,
        home=profile.home,
        week_timezone=_timezone(read),
        target_duration_s=_target_duration(read),
        short_duration_s=float(read.number("MONTAGE_SHORT_DURATION", 30, 15, 60, "seconds")),
        post_cuts=parse_post_cuts(read.text("MONTAGE_POST_CUTS")),
        music_library=_music_library(read),
        public_base_url=read.optional("MONTAGE_PUBLIC_BASE_URL"),
        clip_limits=ClipLimits.from_env(raw),
        schedule=ScheduleSettings(
            hour=read.number("MONTAGE_SCHEDULE_HOUR", 2, 0, 23, "hours"),
            minute=read.number("MONTAGE_SCHEDULE_MINUTE", 0, 0, 59, "minutes"),
            default_status=read.choice(
                "MONTAGE_SCHEDULE_DEFAULT_STATUS", default_status, ("RUNNING", "STOPPED"), upper=True
            ),
        ),
        youtube=youtube,
        tiktok=tiktok,
        instagram=instagram,
        token_keys=read.secret("MONTAGE_TOKEN_KEYS", "social posting" if posting else None),
        mail=_mail(read),
        alert_webhook=read.secret("MONTAGE_ALERT_WEBHOOK_URL"),
        api=ApiSettings(
            admin_token=read.secret("MONTAGE_ADMIN_TOKEN"),
            dagster_graphql_url=read.optional("DAGSTER_GRAPHQL_URL"),
            code_location=read.text("DAGSTER_CODE_LOCATION", "montage_pipeline"),
            url_expires_s=read.number(
                "MONTAGE_URL_EXPIRES_S", 24 * 3600, 60, 7 * 24 * 3600, "seconds (S3's limit)"
            ),
        ),
        executor=_executor(read),
    )
