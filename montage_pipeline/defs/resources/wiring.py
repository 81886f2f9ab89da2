"""Which resources the code location gets: chosen from the deployment profile and the environment.

Secrets reach the resources as `EnvVar`s (resolved only inside runs), so they never show in the UI or in
the run config; a half-configured profile or platform fails at load (in `settings.load_settings`),
naming the missing variable. Nothing here reads the environment: everything comes from `Settings`.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from montage_pipeline.defs.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.defs.io_managers.step_rows_io_manager import StepRowsIOManager
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
from montage_pipeline.profiles import Profile
from montage_pipeline.settings import Secret, Settings


def _env(secret: Secret) -> dg.EnvVar:
    """A secret as an EnvVar: resolved only inside a run, never shown in the UI, the run config or logs."""
    return dg.EnvVar(secret.var)


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


def build_social_resources(settings: Settings) -> dict[str, Any]:
    """The three platforms, off unless enabled; their API URLs overridable (the local fakes)."""
    yt, tt, ig = settings.youtube, settings.tiktok, settings.instagram
    youtube = YouTubeResource(enabled=False)
    if yt.enabled:
        youtube = YouTubeResource(
            enabled=True,
            client_id=_env(yt.client_id),
            client_secret=_env(yt.client_secret),
            api_url=yt.api_url or YouTubeResource.model_fields["api_url"].default,
            token_url=yt.token_url or YouTubeResource.model_fields["token_url"].default,
            privacy=yt.privacy,  # type: ignore[arg-type]
            publish_at=yt.publish_at,
        )
    tiktok = TikTokResource(enabled=False)
    if tt.enabled:
        tiktok = TikTokResource(
            enabled=True,
            client_key=_env(tt.client_key),
            client_secret=_env(tt.client_secret),
            api_url=tt.api_url or TikTokResource.model_fields["api_url"].default,
            mode=tt.mode,  # type: ignore[arg-type]
            privacy_level=tt.privacy_level,
        )
    instagram = InstagramResource(enabled=False)
    if ig.enabled:
        instagram = InstagramResource(
            enabled=True,
            graph_url=ig.graph_url or InstagramResource.model_fields["graph_url"].default,
            refresh_url=ig.refresh_url or InstagramResource.model_fields["refresh_url"].default,
        )
    vault = TokenVault(fernet_keys=_env(settings.token_keys) if settings.posting_enabled else "")
    return {"youtube": youtube, "tiktok": tiktok, "instagram": instagram, "token_vault": vault}


def build_notify_resources(settings: Settings) -> dict[str, Any]:
    """The failure webhook and the SMTP server for creator emails; both optional."""
    mail = settings.mail
    webhook = _env(settings.alert_webhook) if settings.alert_webhook else ""
    mailer = Mailer(
        host=mail.host,
        port=mail.port,
        username=mail.username,
        password=_env(mail.password) if mail.password else "",
        sender=mail.sender,
        starttls=mail.starttls,
        ca_file=mail.ca_file,
    )
    return {"alert_webhook": AlertWebhook(url=webhook), "mailer": mailer}


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource of the code location, from its settings (secrets as `EnvVar`s)."""
    profile = settings.profile
    media_store = build_media_store(profile)
    return {
        **build_notify_resources(settings),
        **build_social_resources(settings),
        # The checked settings themselves, for the assets and sensors that read one (non-secret use).
        "settings": settings,
        "media_store": media_store,
        "media_io_manager": MediaIOManager(
            media_store=media_store, cache_dir=str(settings.home / "cache" / "media")
        ),
        "platform_db": PlatformDatabase(url=_url(profile, "database_url")),
        "table_io_manager": TableIOManager(url=_url(profile, "tables_database_url")),
        # The default IO manager: small rows between ops (per-clip analysis) through the media store,
        # never a worker's local folder. Every asset names its own (table or media) IO manager.
        "io_manager": StepRowsIOManager(media_store=media_store),
        "upload_storage": UploadStorage(root=str(profile.storage_root)),
    }
