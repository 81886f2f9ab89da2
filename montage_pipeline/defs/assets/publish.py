"""`s3_exports` and `social_posts`: the finished week to object storage, the platform DB and the socials."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from montage_pipeline.defs.catalog import OWNERS, stage_tags, table_metadata
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.social import (
    InstagramResource,
    TikTokResource,
    TokenVault,
    YouTubeResource,
)
from montage_pipeline.highlights.cuts import load_cut
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.models import PostState, SocialPlatform
from montage_pipeline.platform.montage_record import WeekLockedError
from montage_pipeline.publishing.exports import ExportedFile
from montage_pipeline.publishing.posting import PlatformClient, SocialPostRow
from montage_pipeline.publishing.week_export import ExportGatedError, ExportOptions, export_week
from montage_pipeline.publishing.week_posts import PostOptions, post_week
from montage_pipeline.settings import Settings

NETWORK_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# The publishing assets' code version: bump it when the same files are published or posted otherwise.
PUBLISH_VERSION = "1"
# A week's export lands shortly after Monday's schedule tick and the next one a week later: fresh for 8
# days, a warning once the next is some hours late, a failure when a week was missed.
EXPORT_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=8), warn_window=timedelta(days=7, hours=6)
)


class ExportConfig(dg.Config):
    # The URLs in this asset's output and metadata: the bucket's public (CDN) base URL, or empty for
    # presigned ones. The week's row stores object keys; the read API mints its URLs per request.
    public_base_url: str = ""
    presign_expires_s: int = 7 * 24 * 3600  # S3's maximum for a SigV4 presigned URL
    video_cache_control: str = "public, max-age=86400"
    title: str = ""  # default: the week's theme's, "Weekly Highlights — Doom week · January 27, 2025"
    # How long to wait for another run writing the same week (the CLI bypasses the run queue).
    week_lock_timeout_s: float = 1800.0


def _local_files(bundle: MediaBundle) -> dict[str, Path]:
    return {name: f.path for name, f in bundle.files.items()}


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"s3", "postgres"},
    code_version=PUBLISH_VERSION,
    owners=OWNERS,
    tags=stage_tags("publish", "table"),
    metadata=table_metadata(ExportedFile),
    freshness_policy=EXPORT_FRESHNESS,
    io_manager_key="table_io_manager",
    retry_policy=NETWORK_RETRY,
    description="The final files as one verified generation under exports/{job_id}/{generation}/; the "
    "weekly_montages row switched to it in one transaction.",
)
def s3_exports(
    context: dg.AssetExecutionContext,
    config: ExportConfig,
    mixed_audio: MediaBundle,
    scored_highlights: list[EditSpan],
    media_store: MediaStoreResource,
    platform_db: PlatformDatabase,
) -> dg.Output[list[ExportedFile]]:
    week = context.partition_key
    options = ExportOptions(
        public_base_url=config.public_base_url,
        presign_expires_s=config.presign_expires_s,
        cache_control=config.video_cache_control,
        title=config.title,
        week_lock_timeout_s=config.week_lock_timeout_s,
    )
    store = media_store.store()
    try:
        export = export_week(
            store, platform_db.engine, week, _local_files(mixed_audio), scored_highlights, options
        )
    except ExportGatedError as exc:  # nothing was touched: a published export of this week stays
        raise dg.Failure(str(exc), allow_retries=False) from None
    except WeekLockedError as exc:
        raise dg.Failure(f"not exporting {week}: {exc}", allow_retries=False) from None
    rows = export.rows
    for r in rows:
        context.log.info(f"{r.key}: {'uploaded' if r.uploaded else 'unchanged'}, {r.size_bytes} bytes")
    by_name = {r.name: r for r in rows}
    return dg.Output(
        rows,
        metadata={
            "dagster/row_count": len(rows),
            "export_generation": export.generation,
            "files_uploaded": sum(r.uploaded for r in rows),
            "files_unchanged": sum(not r.uploaded for r in rows),
            "objects_collected": len(export.collected),
            "export_bytes": sum(r.size_bytes for r in rows),
            # 0: no package this time (a source clip was gone; the step's log says which).
            "editor_package_bytes": by_name["editor_package.zip"].size_bytes
            if "editor_package.zip" in by_name
            else 0,
            "montage_duration_s": round(export.duration_s, 3),
            "clip_count": export.clip_count,
            "featured_users": len(export.featured_user_ids),
            "title": export.title,
            "notifications_written": len(export.notified_user_ids),
            "weekly_montage_id": export.montage_id,
            "job_id": export.job_id,
            "landscape": dg.MetadataValue.url(by_name["final_landscape.mp4"].uri),
            "portrait": dg.MetadataValue.url(by_name["final_portrait.mp4"].uri),
            **{
                f"{cut}_cut": dg.MetadataValue.url(by_name[name].uri) if name in by_name else "not exported"
                for cut, name in (("short", "final_short_portrait.mp4"), ("long", "final_long_landscape.mp4"))
            },
        },
    )


class SocialPostsConfig(dg.Config):
    attempts_per_post: int = 5  # tries with backoff inside one step, before the step's own retry
    backoff_base_s: float = 0.5  # full-jitter exponential backoff base (a Retry-After header wins)
    portrait_url_expires_s: int = 24 * 3600  # how long Instagram may take to fetch the video


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"youtube", "tiktok", "instagram"},
    code_version=PUBLISH_VERSION,
    owners=OWNERS,
    tags=stage_tags("publish", "table"),
    metadata=table_metadata(SocialPostRow),
    io_manager_key="table_io_manager",
    deps=["short_highlights", "long_highlights"],  # their spans: read from the media store
    retry_policy=NETWORK_RETRY,
    description="The week posted for opted-in Creator+ users: YouTube (16:9), TikTok and Instagram Reels "
    "(9:16), exactly once each, through the social_posts outbox; the cut per platform from "
    "MONTAGE_POST_CUTS (default: the short to TikTok and Reels, the main cut to YouTube).",
)
def social_posts(
    context: dg.AssetExecutionContext,
    config: SocialPostsConfig,
    s3_exports: list[ExportedFile],
    mixed_audio: MediaBundle,
    scored_highlights: list[EditSpan],
    settings: dg.ResourceParam[Settings],
    media_store: MediaStoreResource,
    platform_db: PlatformDatabase,
    token_vault: TokenVault,
    youtube: YouTubeResource,
    tiktok: TikTokResource,
    instagram: InstagramResource,
) -> dg.Output[list[SocialPostRow]]:
    clients: dict[SocialPlatform, PlatformClient] = {
        platform: client
        for platform, client in (
            (SocialPlatform.YOUTUBE, youtube.client()),
            (SocialPlatform.TIKTOK, tiktok.client()),
            (SocialPlatform.INSTAGRAM, instagram.client()),
        )
        if client is not None
    }
    options = PostOptions(
        attempts_per_post=config.attempts_per_post,
        backoff_base_s=config.backoff_base_s,
        portrait_url_expires_s=config.portrait_url_expires_s,
    )
    store = media_store.store()
    posts = post_week(
        platform_db.sessionmaker,
        store,
        context.partition_key,
        clients,
        token_vault.cipher,
        s3_exports,
        _local_files(mixed_audio),
        scored_highlights,
        worker=context.run.run_id,
        options=options,
        cuts=dict(settings.post_cuts),
        cut_spans={
            cut: load_cut(store, context.partition_key, cut, scored_highlights).spans
            for cut in ("short", "long")
        },
    )
    rows, open_rows = posts.rows, posts.open_rows
    metadata: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "posts_succeeded": sum(r.state == PostState.PUBLISHED.value for r in rows),
        "posts_failed": sum(r.state == PostState.FAILED.value for r in rows),
        "posts_pending": len(open_rows),
        "platforms_enabled": ", ".join(p.value for p in clients) or "none",
        "cuts_posted": ", ".join(f"{p}={c}" for p, c in posts.cuts.items()) or "none",
    }
    if open_rows and clients:
        # Left open by transient failures: fail the step so its retry policy resumes them.
        detail = "; ".join(f"{r.platform} post {r.post_id}: {r.last_error}" for r in open_rows)
        raise dg.Failure(f"{len(open_rows)} posts not finished: {detail}", metadata=metadata)
    return dg.Output(rows, metadata=metadata)
