"""`s3_exports` and `social_posts`: the finished week to object storage, the platform DB and the socials."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
from montage_pipeline.highlights.edl_export import write_json, write_otio
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.mux import video_duration
from montage_pipeline.platform.models import PostState, SocialPlatform
from montage_pipeline.platform.montage_record import (
    MontageEvent,
    MontageFacts,
    WeekLockedError,
    default_title,
    montage_row,
    record_published,
    record_status,
    week_lock,
    week_start_dt,
)
from montage_pipeline.publishing.content import PostContent, caption, description, tags
from montage_pipeline.publishing.exports import (
    ExportedFile,
    ExportFile,
    collect_garbage,
    publish_generation,
)
from montage_pipeline.publishing.gate import export_failures
from montage_pipeline.publishing.outbox import ensure_rows
from montage_pipeline.publishing.posting import (
    PlatformClient,
    SocialPostRow,
    is_final,
    post_targets,
    run_outbox,
    week_rows,
)
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore

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
    title: str = ""  # default: "Weekly Highlights - January 27, 2025"
    # How long to wait for another run writing the same week (the CLI bypasses the run queue).
    week_lock_timeout_s: float = 1800.0


# (file in the bundle, which gate applies)
_VIDEOS = {
    "final_landscape.mp4": "landscape",
    "final_portrait.mp4": "portrait",
    "final_portrait_unbranded.mp4": "portrait",
}
# (exported name: the asset and file in the media store, content type)
_THUMBNAILS = {
    "thumbnail_landscape.jpg": ("landscape_render", "thumbnail.jpg", "image/jpeg"),
    "thumbnail_portrait.jpg": ("portrait_render", "thumbnail.jpg", "image/jpeg"),
}


@contextmanager
def _holding_week(platform_db: PlatformDatabase, week: str, wait_s: float) -> Iterator[None]:
    try:
        with week_lock(platform_db.engine, week, wait_s):
            yield
    except WeekLockedError as exc:
        raise dg.Failure(f"not exporting {week}: {exc}", allow_retries=False) from None


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
    store = media_store.store()
    failures = {
        name: export_failures(mixed_audio[name].path, orientation)  # type: ignore[arg-type]
        for name, orientation in _VIDEOS.items()
        if name in mixed_audio.files
    }
    bad = {name: f for name, f in failures.items() if f}
    if bad:
        with (
            _holding_week(platform_db, week, config.week_lock_timeout_s),
            platform_db.session() as session,
        ):
            record_status(session, week, MontageEvent.EXPORT_GATED)
        detail = "; ".join(f"{name}: {', '.join(f)}" for name, f in bad.items())
        # Nothing was touched: a published export of this week stays as it was.
        raise dg.Failure(f"not exporting {week}: {detail}", allow_retries=False)
    spans = sorted(scored_highlights, key=lambda s: s.order)
    with _holding_week(platform_db, week, config.week_lock_timeout_s):
        with platform_db.session() as session:
            job_id = record_status(session, week, MontageEvent.EXPORT_STARTED)
        workdir = Path(tempfile.mkdtemp(prefix="montage-export-"))
        try:
            items = [
                ExportFile(name, mixed_audio[name].path, "video/mp4", config.video_cache_control)
                for name in _VIDEOS
                if name in mixed_audio.files
            ]
            for name, (asset, source, content_type) in _THUMBNAILS.items():
                key = keys.asset_file_key(week, asset, source)
                if store.exists(key):
                    store.get_file(key, workdir / name)
                    items.append(ExportFile(name, workdir / name, content_type, config.video_cache_control))
                else:
                    context.log.warning(f"{key} is missing; {name} is not exported")
            # The public edit: no server paths, no user, job or clip ids (the internal one stays in
            # weeks/{week}/ for the pipeline).
            write_json(workdir / "edl.json", week, spans, public=True)
            write_otio(workdir / "montage.otio", week, spans, public=True)
            items += [
                ExportFile(name, workdir / name, "application/json", config.video_cache_control)
                for name in ("edl.json", "montage.otio")
            ]
            published = publish_generation(store, job_id, items)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        rows = [
            ExportedFile(
                week=week,
                job_id=job_id,
                generation=published.generation,
                name=f.name,
                key=f.key,
                uri=store.uri(f.key),
                url=store.url(f.key, config.presign_expires_s, config.public_base_url or None),
                content_type=f.content_type,
                size_bytes=f.size_bytes,
                sha256=f.sha256,
                uploaded=f.uploaded,
            )
            for f in published.files
        ]
        for r in rows:
            context.log.info(f"{r.key}: {'uploaded' if r.uploaded else 'unchanged'}, {r.size_bytes} bytes")
        featured = list(dict.fromkeys(s.user_id for s in spans))
        duration = video_duration(mixed_audio["final_landscape.mp4"].path)
        facts = MontageFacts(
            title=config.title or default_title(week),
            clip_count=len({s.clip_id for s in spans}),
            total_duration=duration,
            featured_user_ids=featured,
            render_path_landscape=published.key("final_landscape.mp4"),
            render_path_portrait=published.key("final_portrait.mp4"),
            export_generation=published.generation,
            export_files=published.manifest(),
        )
        # Every file verified: switch the row to the new generation, all of it in one transaction.
        with platform_db.session() as session:
            previous = montage_row(session, week)
            replaced = previous.export_generation if previous else None
            montage = record_published(session, week, facts)
            montage_id = montage.id
        # Keep the generation just replaced: URLs minted a moment ago still work.
        keep = {published.generation} | ({replaced} if replaced else set())
        collected = collect_garbage(store, job_id, keep)
    by_name = {r.name: r for r in rows}
    return dg.Output(
        rows,
        metadata={
            "dagster/row_count": len(rows),
            "export_generation": published.generation,
            "files_uploaded": sum(r.uploaded for r in rows),
            "files_unchanged": sum(not r.uploaded for r in rows),
            "objects_collected": len(collected),
            "export_bytes": sum(r.size_bytes for r in rows),
            "montage_duration_s": round(duration, 3),
            "clip_count": facts.clip_count,
            "featured_users": len(featured),
            "weekly_montage_id": montage_id,
            "job_id": job_id,
            "landscape": dg.MetadataValue.url(by_name["final_landscape.mp4"].uri),
            "portrait": dg.MetadataValue.url(by_name["final_portrait.mp4"].uri),
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
    retry_policy=NETWORK_RETRY,
    description="The week posted for opted-in Creator+ users: YouTube (16:9), TikTok and Instagram Reels "
    "(9:16), exactly once each, through the social_posts outbox.",
)
def social_posts(
    context: dg.AssetExecutionContext,
    config: SocialPostsConfig,
    s3_exports: list[ExportedFile],
    mixed_audio: MediaBundle,
    scored_highlights: list[EditSpan],
    media_store: MediaStoreResource,
    platform_db: PlatformDatabase,
    token_vault: TokenVault,
    youtube: YouTubeResource,
    tiktok: TikTokResource,
    instagram: InstagramResource,
) -> dg.Output[list[SocialPostRow]]:
    week = context.partition_key
    week_start = week_start_dt(week)
    clients: dict[SocialPlatform, PlatformClient] = {
        platform: client
        for platform, client in (
            (SocialPlatform.YOUTUBE, youtube.client()),
            (SocialPlatform.TIKTOK, tiktok.client()),
            (SocialPlatform.INSTAGRAM, instagram.client()),
        )
        if client is not None
    }
    spans = sorted(scored_highlights, key=lambda s: s.order)
    featured = list(dict.fromkeys(s.user_id for s in spans))
    with platform_db.session() as session:
        targets = post_targets(session, featured, list(clients))
        added = ensure_rows(session, week_start, targets)
    handles = ", ".join(dict.fromkeys(f"@{s.user_handle}" for s in spans))
    if clients:
        platforms = ", ".join(p.value for p in clients)
        context.log.info(f"featured: {handles}; {len(targets)} posts ({added} new) on {platforms}")
        # The thumbnail's download folder lives as long as the posting, and not one run longer.
        with tempfile.TemporaryDirectory(prefix="montage-post-") as workdir:
            content = _post_content(
                week, s3_exports, mixed_audio, spans, media_store.store(), config, Path(workdir)
            )
            run_outbox(
                platform_db.sessionmaker,
                week_start,
                clients,
                content,
                token_vault.cipher(),
                worker=context.run.run_id,
                attempts=config.attempts_per_post,
                backoff_base_s=config.backoff_base_s,
            )
    else:
        context.log.info(
            "social posting is off (YOUTUBE_API_ENABLED, TIKTOK_API_ENABLED, INSTAGRAM_API_ENABLED)"
        )
    with platform_db.session() as session:
        rows = week_rows(session, week, week_start)
    open_rows = [r for r in rows if not is_final(r)]
    metadata: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "posts_succeeded": sum(r.state == PostState.PUBLISHED.value for r in rows),
        "posts_failed": sum(r.state == PostState.FAILED.value for r in rows),
        "posts_pending": len(open_rows),
        "platforms_enabled": ", ".join(p.value for p in clients) or "none",
    }
    if open_rows and clients:
        # Left open by transient failures: fail the step so its retry policy resumes them.
        detail = "; ".join(f"{r.platform} post {r.post_id}: {r.last_error}" for r in open_rows)
        raise dg.Failure(f"{len(open_rows)} posts not finished: {detail}", metadata=metadata)
    return dg.Output(rows, metadata=metadata)


def _post_content(
    week: str,
    exports: list[ExportedFile],
    mixed: MediaBundle,
    spans: list[EditSpan],
    media_store: MediaStore,
    config: SocialPostsConfig,
    workdir: Path,
) -> PostContent:
    by_name = {e.name: e for e in exports}
    title = default_title(week)
    portrait = mixed["final_portrait.mp4"].path
    unbranded = mixed.files.get("final_portrait_unbranded.mp4")
    thumbnail: Path | None = None
    if "thumbnail_landscape.jpg" in by_name:
        thumbnail = workdir / "thumbnail.jpg"
        media_store.get_file(by_name["thumbnail_landscape.jpg"].key, thumbnail)
    duration = video_duration(mixed["final_landscape.mp4"].path)
    return PostContent(
        week=week,
        title=title,
        description=description(title, spans, duration),
        caption=caption(title, spans),
        tags=tags(spans),
        landscape=mixed["final_landscape.mp4"].path,
        portrait=portrait,
        portrait_unbranded=unbranded.path if unbranded else portrait,
        thumbnail=thumbnail,
        portrait_url=media_store.url(by_name["final_portrait.mp4"].key, config.portrait_url_expires_s),
        duration_s=duration,
        portrait_duration_s=video_duration(portrait),
    )
