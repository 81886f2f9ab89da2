"""A week's export, start to finish: the gate, the week's lock, one verified generation, the row's switch.

`export_week` is the sequence `s3_exports` runs: gate each final MP4 once more on its exact bytes (a
refusal records EXPORT_GATED and touches nothing else), then, holding the week's lock, record
EXPORT_STARTED, publish the videos, the thumbnails the renders left, the public edit (`edl.json`,
`montage.otio` with its FCP 7 XML, FCPXML and CMX 3600 exports) and the editor package
(`editor_package.zip`: trimmed media, soundtrack, relinked timelines) as one content-addressed
generation, switch the week's row to it in one transaction and collect the generations no longer
needed. Plain Python: the asset turns `ExportGatedError` and `WeekLockedError` into step failures.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from montage_pipeline.highlights.editor_package import PACKAGE_NAME, build_package
from montage_pipeline.highlights.editor_timeline import EXPORT_TYPES
from montage_pipeline.highlights.edl_export import write_json, write_otio
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.highlights.soundtrack import AUDIO_MEASUREMENTS
from montage_pipeline.highlights.theme import load_theme
from montage_pipeline.media.audio_specs import AudioMeasurements
from montage_pipeline.media.mux import video_duration
from montage_pipeline.platform.montage_record import (
    MontageEvent,
    MontageFacts,
    montage_row,
    record_published,
    record_status,
    week_lock,
)
from montage_pipeline.platform.notifications import notify_featured
from montage_pipeline.publishing.exports import (
    ExportedFile,
    ExportFile,
    ExportGeneration,
    collect_garbage,
    publish_generation,
)
from montage_pipeline.publishing.gate import export_failures
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore

log = logging.getLogger(__name__)

# The final videos an export publishes, and which platform gate each must pass.
# Named per cut: the main cut's two aspects, the short (portrait) and the long YouTube cut (landscape).
VIDEOS: dict[str, Literal["landscape", "portrait"]] = {
    "final_landscape.mp4": "landscape",
    "final_portrait.mp4": "portrait",
    "final_portrait_unbranded.mp4": "portrait",
    "final_short_portrait.mp4": "portrait",
    "final_short_portrait_unbranded.mp4": "portrait",
    "final_long_landscape.mp4": "landscape",
}
# (exported name: the asset and file in the media store, content type)
THUMBNAILS = {
    "thumbnail_landscape.jpg": ("landscape_render", "thumbnail.jpg", "image/jpeg"),
    "thumbnail_portrait.jpg": ("portrait_render", "thumbnail.jpg", "image/jpeg"),
    "thumbnail_short_portrait.jpg": ("short_portrait_render", "thumbnail.jpg", "image/jpeg"),
    "thumbnail_long_landscape.jpg": ("long_landscape_render", "thumbnail.jpg", "image/jpeg"),
}
# A cut's thumbnail goes out only with the cut's video (a week without a long cut exports none).
THUMBNAIL_VIDEO = {
    "thumbnail_short_portrait.jpg": "final_short_portrait.mp4",
    "thumbnail_long_landscape.jpg": "final_long_landscape.mp4",
}
PUBLIC_EDITS = ("edl.json", "montage.otio")
# The editor exports beside them (relinked to the package's media) and the package itself.
EDITOR_FILES = (*EXPORT_TYPES, PACKAGE_NAME)


@dataclass(frozen=True, slots=True)
class ExportOptions:
    # The URLs in the rows: the bucket's public (CDN) base URL, or empty for presigned ones.
    public_base_url: str = ""
    presign_expires_s: int = 7 * 24 * 3600  # S3's maximum for a SigV4 presigned URL
    cache_control: str = "public, max-age=86400"
    title: str = ""  # default: the theme's, "Weekly Highlights — Doom week · January 27, 2025"
    week_lock_timeout_s: float = 1800.0  # how long to wait for another run writing the same week


@dataclass(frozen=True, slots=True)
class WeekExport:
    """What one export published and switched the week's row to."""

    rows: list[ExportedFile]
    job_id: int
    generation: str
    montage_id: int
    collected: list[str]  # keys of older generations deleted
    duration_s: float  # the landscape montage's length
    clip_count: int
    featured_user_ids: list[int]
    title: str
    notified_user_ids: list[int]  # in-app notifications written by this export (none on a rerun)


class ExportGatedError(RuntimeError):
    """A final file failed the gate: nothing was published, the week's job is FAILED."""

    def __init__(self, week: str, failures: Mapping[str, Sequence[str]]) -> None:
        self.week = week
        self.failures = {name: list(f) for name, f in failures.items()}
        detail = "; ".join(f"{name}: {', '.join(f)}" for name, f in self.failures.items())
        super().__init__(f"not exporting {week}: {detail}")


def gate_failures(files: Mapping[str, Path]) -> dict[str, list[str]]:
    """Each final video among `files` that must not be published, with its reasons (the audio that
    `mixed_audio` measured, listed in its `AUDIO_MEASUREMENTS` among `files`, is not decoded again)."""
    measured = AudioMeasurements.read(files.get(AUDIO_MEASUREMENTS))
    failures = {
        name: export_failures(files[name], orientation, measured)
        for name, orientation in VIDEOS.items()
        if name in files
    }
    return {name: f for name, f in failures.items() if f}


def export_week(
    store: MediaStore,
    engine: Engine,
    week: str,
    files: Mapping[str, Path],
    spans: Sequence[EditSpan],
    options: ExportOptions,
) -> WeekExport:
    """Publish the week's final `files` (name -> local path) and switch its row to them.

    Raises `ExportGatedError` when a video fails the gate (recorded as EXPORT_GATED, nothing else
    touched) and `WeekLockedError` when another run holds the week longer than the options allow.
    """
    sessions = sessionmaker(engine, expire_on_commit=False)
    ordered = sorted(spans, key=lambda s: s.order)
    bad = gate_failures(files)
    if bad:
        with week_lock(engine, week, options.week_lock_timeout_s), sessions.begin() as session:
            record_status(session, week, MontageEvent.EXPORT_GATED)
        # Nothing was touched: a published export of this week stays as it was.
        raise ExportGatedError(week, bad)
    with week_lock(engine, week, options.week_lock_timeout_s):
        with sessions.begin() as session:
            job_id = record_status(session, week, MontageEvent.EXPORT_STARTED)
        published = _publish(store, job_id, week, files, ordered, options.cache_control)
        rows = exported_rows(store, week, published, options)
        duration = video_duration(files["final_landscape.mp4"])
        facts = MontageFacts(
            title=options.title or load_theme(store, week, ordered).title(week),
            clip_count=len({s.clip_id for s in ordered}),
            total_duration=duration,
            featured_user_ids=list(dict.fromkeys(s.user_id for s in ordered)),
            render_path_landscape=published.key("final_landscape.mp4"),
            render_path_portrait=published.key("final_portrait.mp4"),
            export_generation=published.generation,
            export_files=published.manifest(),
        )
        montage_id, replaced, notified = _switch_row(sessions, week, facts)
        # Keep the generation just replaced: URLs minted a moment ago still work.
        keep = {published.generation} | ({replaced} if replaced else set())
        collected = collect_garbage(store, job_id, keep)
    return WeekExport(
        rows=rows,
        job_id=job_id,
        generation=published.generation,
        montage_id=montage_id,
        collected=collected,
        duration_s=duration,
        clip_count=facts.clip_count,
        featured_user_ids=facts.featured_user_ids,
        title=facts.title,
        notified_user_ids=notified,
    )


def _publish(
    store: MediaStore,
    job_id: int,
    week: str,
    files: Mapping[str, Path],
    spans: Sequence[EditSpan],
    cache_control: str,
) -> ExportGeneration:
    """Stage the thumbnails and the public edit beside the videos and publish them all, verified."""
    workdir = Path(tempfile.mkdtemp(prefix="montage-export-"))
    try:
        items = export_items(store, week, files, spans, workdir, cache_control)
        return publish_generation(store, job_id, items)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def export_items(
    store: MediaStore,
    week: str,
    files: Mapping[str, Path],
    spans: Sequence[EditSpan],
    workdir: Path,
    cache_control: str,
) -> list[ExportFile]:
    """The generation's files: the final videos, the renders' thumbnails (fetched into `workdir`; a
    missing one is left out with a warning) and the public edit written there."""
    items = [ExportFile(name, files[name], "video/mp4", cache_control) for name in VIDEOS if name in files]
    for name, (asset, source, content_type) in THUMBNAILS.items():
        if name in THUMBNAIL_VIDEO and THUMBNAIL_VIDEO[name] not in files:
            continue
        key = keys.asset_file_key(week, asset, source)
        if store.exists(key):
            store.get_file(key, workdir / name)
            items.append(ExportFile(name, workdir / name, content_type, cache_control))
        else:
            log.warning("%s is missing; %s is not exported", key, name)
    # The public edit: no server paths, no user, job or clip ids (the internal one stays in
    # weeks/{week}/ for the pipeline).
    write_json(workdir / "edl.json", week, spans, public=True)
    items.append(ExportFile("edl.json", workdir / "edl.json", "application/json", cache_control))
    return items + editor_items(week, files, spans, workdir, cache_control)


def editor_items(
    week: str, files: Mapping[str, Path], spans: Sequence[EditSpan], workdir: Path, cache_control: str
) -> list[ExportFile]:
    """The editor package and its timelines (relinked to the package's media), or, when a source clip
    is gone, the public `montage.otio` alone (clips named for relinking by hand), with a warning."""
    duration = video_duration(files["final_landscape.mp4"]) if "final_landscape.mp4" in files else None
    package = None
    try:
        if spans:
            package = build_package(
                week, spans, files.get("soundtrack.m4a"), workdir / "package", duration_s=duration
            )
    except FileNotFoundError as exc:
        log.warning("no editor package for %s: %s", week, exc)
    if package is None:
        write_otio(workdir / "montage.otio", week, spans, public=True)
        return [ExportFile("montage.otio", workdir / "montage.otio", "application/json", cache_control)]
    items = [ExportFile(n, p, EXPORT_TYPES[n], cache_control) for n, p in package.timelines.items()]
    return [*items, ExportFile(PACKAGE_NAME, package.zip_path, "application/zip", cache_control)]


def exported_rows(
    store: MediaStore, week: str, published: ExportGeneration, options: ExportOptions
) -> list[ExportedFile]:
    """`s3_exports`' rows: each published file with its URI and a URL to fetch it."""
    return [
        ExportedFile(
            week=week,
            job_id=published.job_id,
            generation=published.generation,
            name=f.name,
            key=f.key,
            uri=store.uri(f.key),
            url=store.url(f.key, options.presign_expires_s, options.public_base_url or None),
            content_type=f.content_type,
            size_bytes=f.size_bytes,
            sha256=f.sha256,
            uploaded=f.uploaded,
        )
        for f in published.files
    ]


def _switch_row(
    sessions: sessionmaker[Session], week: str, facts: MontageFacts
) -> tuple[int, str | None, list[int]]:
    """Every file verified: switch the row to the new generation and notify the featured users in the
    app, all of it in one transaction.

    Returns the row's id, the generation it pointed at before and the users notified now.
    """
    with sessions.begin() as session:
        previous = montage_row(session, week)
        replaced = previous.export_generation if previous else None
        montage = record_published(session, week, facts)
        notified = notify_featured(session, montage, facts.featured_user_ids)
        return montage.id, replaced, notified
