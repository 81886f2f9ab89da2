"""Which resources the code location gets: chosen from the deployment profile and the environment.

Secrets reach the resources as `EnvVar`s (resolved only inside runs), so they never show in the UI or in
the run config; a half-configured profile or platform fails at load, naming the missing variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from montage_pipeline.defs.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import (
    LocalMediaStoreResource,
    MediaStoreResource,
    S3MediaStoreResource,
)
from montage_pipeline.defs.resources.notify import AlertWebhook, Mailer
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.social import (
    InstagramResource,
    TikTokResource,
    TokenVault,
    YouTubeResource,
)
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.profiles import Profile, ProfileError


def _url(profile: Profile, field: str) -> Any:
    """A database URL as an EnvVar in production (kept out of the UI), a literal in the embedded profile."""
    raw = getattr(profile, field)
    return dg.EnvVar(raw) if field in profile.secret_env else raw


def build_media_store(profile: Profile) -> MediaStoreResource:
    """The profile's media store: its S3 bucket (production), else its local folder."""
    if profile.s3 is not None:
        from dagster_aws.s3 import S3Resource

        s3 = S3Resource(endpoint_url=profile.s3.endpoint_url, region_name=profile.s3.region_name)
        return S3MediaStoreResource(s3=s3, bucket=profile.s3.bucket, prefix=profile.s3.prefix)
    assert profile.media_root is not None
    return LocalMediaStoreResource(root=str(profile.media_root))


_TRUE = {"1", "true", "yes", "on"}


def _enabled(env: Mapping[str, str], var: str) -> bool:
    return env.get(var, "").strip().lower() in _TRUE


def _secret(env: Mapping[str, str], var: str, why: str) -> dg.EnvVar:
    """A secret as an EnvVar (kept out of the UI and the logs); missing while needed fails at load."""
    if not env.get(var):
        raise ProfileError(f"{why} needs {var} set (see README.md, 'Environment variables')")
    return dg.EnvVar(var)


def build_social_resources(env: Mapping[str, str]) -> dict[str, Any]:
    """The three platforms, off unless enabled; their API URLs overridable (the local fakes)."""
    youtube_on, tiktok_on = _enabled(env, "YOUTUBE_API_ENABLED"), _enabled(env, "TIKTOK_API_ENABLED")
    instagram_on = _enabled(env, "INSTAGRAM_API_ENABLED")
    youtube = YouTubeResource(enabled=False)
    if youtube_on:
        youtube = YouTubeResource(
            enabled=True,
            client_id=_secret(env, "YOUTUBE_CLIENT_ID", "YOUTUBE_API_ENABLED"),
            client_secret=_secret(env, "YOUTUBE_CLIENT_SECRET", "YOUTUBE_API_ENABLED"),
            api_url=env.get("YOUTUBE_API_URL") or YouTubeResource.model_fields["api_url"].default,
            token_url=env.get("GOOGLE_TOKEN_URL") or YouTubeResource.model_fields["token_url"].default,
            privacy=env.get("YOUTUBE_PRIVACY") or "unlisted",  # type: ignore[arg-type]
            publish_at=env.get("YOUTUBE_PUBLISH_AT", ""),
        )
    tiktok = TikTokResource(enabled=False)
    if tiktok_on:
        tiktok = TikTokResource(
            enabled=True,
            client_key=_secret(env, "TIKTOK_CLIENT_KEY", "TIKTOK_API_ENABLED"),
            client_secret=_secret(env, "TIKTOK_CLIENT_SECRET", "TIKTOK_API_ENABLED"),
            api_url=env.get("TIKTOK_API_URL") or TikTokResource.model_fields["api_url"].default,
            mode="direct" if env.get("TIKTOK_POST_MODE") == "direct" else "inbox",
            privacy_level=env.get("TIKTOK_PRIVACY_LEVEL") or "SELF_ONLY",
        )
    instagram = InstagramResource(enabled=False)
    if instagram_on:
        instagram = InstagramResource(
            enabled=True,
            graph_url=env.get("INSTAGRAM_GRAPH_URL") or InstagramResource.model_fields["graph_url"].default,
            refresh_url=env.get("INSTAGRAM_REFRESH_URL")
            or InstagramResource.model_fields["refresh_url"].default,
        )
    any_on = youtube_on or tiktok_on or instagram_on
    vault = TokenVault(fernet_keys=_secret(env, "MONTAGE_TOKEN_KEYS", "social posting") if any_on else "")
    return {"youtube": youtube, "tiktok": tiktok, "instagram": instagram, "token_vault": vault}


def build_notify_resources(env: Mapping[str, str]) -> dict[str, Any]:
    """The failure webhook and the SMTP server for creator emails; both optional."""
    webhook = dg.EnvVar("MONTAGE_ALERT_WEBHOOK_URL") if env.get("MONTAGE_ALERT_WEBHOOK_URL") else ""
    mailer = Mailer(
        host=env.get("MONTAGE_SMTP_HOST", ""),
        port=int(env.get("MONTAGE_SMTP_PORT") or 587),
        username=env.get("MONTAGE_SMTP_USERNAME", ""),
        password=dg.EnvVar("MONTAGE_SMTP_PASSWORD") if env.get("MONTAGE_SMTP_PASSWORD") else "",
        sender=env.get("MONTAGE_SMTP_FROM") or "highlights@example.com",
        starttls=env.get("MONTAGE_SMTP_STARTTLS", "true").lower() in _TRUE,
        ca_file=env.get("MONTAGE_SMTP_CA_FILE", ""),  # a private relay's CA; empty: the system's
    )
    return {"alert_webhook": AlertWebhook(url=webhook), "mailer": mailer}


def build_resources(profile: Profile, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    media_store = build_media_store(profile)
    return {
        **build_notify_resources(os.environ if env is None else env),
        **build_social_resources(os.environ if env is None else env),
        "media_store": media_store,
        "media_io_manager": MediaIOManager(media_store=media_store),
        "platform_db": PlatformDatabase(url=_url(profile, "database_url")),
        "table_io_manager": TableIOManager(url=_url(profile, "tables_database_url")),
        "upload_storage": UploadStorage(root=str(profile.storage_root)),
    }
