"""`s3_exports` and `social_posts`: the finished week to object storage, the platform DB and the socials."""

import shutil
import tempfile
from pathlib import Path

import dagster as dg

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.io_managers.media_io_manager import MediaBundle
from montage_pipeline.media.mux import video_duration
from montage_pipeline.partitions import weekly_partitions
from montage_pipeline.platform.models import JobStatus
from montage_pipeline.publishing.exports import ExportedFile, ExportFile, publish_file
from montage_pipeline.publishing.gate import export_failures
from montage_pipeline.publishing.montage_record import (
    MontageFacts,
    default_title,
    record_published,
    set_job_status,
)
from montage_pipeline.resources.media_store import MediaStore
from montage_pipeline.resources.platform_db import PlatformDatabase

NETWORK_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


class ExportConfig(dg.Config):
    # Set to the bucket's public (CDN) base URL to record public URLs; empty records presigned URLs.
    public_base_url: str = ""
    presign_expires_s: int = 7 * 24 * 3600  # S3's maximum for a SigV4 presigned URL
    video_cache_control: str = "public, max-age=86400"
    title: str = ""  # default: "Weekly Highlights - January 27, 2025"


# (file in the bundle or in the media store, exported name, content type, which gate applies)
_VIDEOS = {
    "final_landscape.mp4": "landscape",
    "final_portrait.mp4": "portrait",
    "final_portrait_unbranded.mp4": "portrait",
}
_SIDECARS = {
    "thumbnail_landscape.jpg": ("landscape_render/thumbnail.jpg", "image/jpeg"),
    "thumbnail_portrait.jpg": ("portrait_render/thumbnail.jpg", "image/jpeg"),
    "edl.json": ("edl.json", "application/json"),
    "montage.otio": ("montage.otio", "application/json"),
}


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"s3", "postgres"},
    io_manager_key="table_io_manager",
    retry_policy=NETWORK_RETRY,
    description="The final files under exports/{job_id}/, verified by sha256; the weekly_montages row.",
)
def s3_exports(
    context: dg.AssetExecutionContext,
    config: ExportConfig,
    mixed_audio: MediaBundle,
    scored_highlights: list[EditSpan],
    media_store: MediaStore,
    platform_db: PlatformDatabase,
) -> dg.Output[list[ExportedFile]]:
    week = context.partition_key
    failures = {
        name: export_failures(mixed_audio[name].path, orientation)  # type: ignore[arg-type]
        for name, orientation in _VIDEOS.items()
        if name in mixed_audio.files
    }
    bad = {name: f for name, f in failures.items() if f}
    if bad:
        with platform_db.session() as session:
            set_job_status(session, week, JobStatus.FAILED)
        detail = "; ".join(f"{name}: {', '.join(f)}" for name, f in bad.items())
        # Nothing was touched: a published export of this week stays as it was.
        raise dg.Failure(f"not exporting {week}: {detail}", allow_retries=False)
    with platform_db.session() as session:
        job_id = set_job_status(session, week, JobStatus.PROCESSING)
    workdir = Path(tempfile.mkdtemp(prefix="montage-export-"))
    try:
        items = [
            ExportFile(name, mixed_audio[name].path, "video/mp4", config.video_cache_control)
            for name in _VIDEOS
            if name in mixed_audio.files
        ]
        for name, (source, content_type) in _SIDECARS.items():
            key = f"weeks/{week}/{source}"
            if media_store.exists(key):
                media_store.get_file(key, workdir / name)
                items.append(ExportFile(name, workdir / name, content_type, config.video_cache_control))
            else:
                context.log.warning(f"{key} is missing; {name} is not exported")
        rows = []
        for item in items:
            key, size, sha, uploaded = publish_file(media_store, job_id, item)
            url = media_store.url(key, config.presign_expires_s, config.public_base_url or None)
            rows.append(
                ExportedFile(
                    week=week,
                    job_id=job_id,
                    name=item.name,
                    key=key,
                    uri=media_store.uri(key),
                    url=url,
                    content_type=item.content_type,
                    size_bytes=size,
                    sha256=sha,
                    uploaded=uploaded,
                )
            )
            context.log.info(f"{key}: {'uploaded' if uploaded else 'unchanged'}, {size} bytes")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    by_name = {r.name: r for r in rows}
    spans = sorted(scored_highlights, key=lambda s: s.order)
    featured = list(dict.fromkeys(s.user_id for s in spans))
    duration = video_duration(mixed_audio["final_landscape.mp4"].path)
    facts = MontageFacts(
        title=config.title or default_title(week),
        clip_count=len({s.clip_id for s in spans}),
        total_duration=duration,
        featured_user_ids=featured,
        render_path_landscape=by_name["final_landscape.mp4"].url,
        render_path_portrait=by_name["final_portrait.mp4"].url,
    )
    with platform_db.session() as session:
        montage = record_published(session, week, facts)
        montage_id = montage.id
    return dg.Output(
        rows,
        metadata={
            "dagster/row_count": len(rows),
            "files_uploaded": sum(r.uploaded for r in rows),
            "files_unchanged": sum(not r.uploaded for r in rows),
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
