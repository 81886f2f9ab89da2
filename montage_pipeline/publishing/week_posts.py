"""A week's social posts, start to finish: the outbox rows for the opted-in creators, the posting, the rows.

`post_week` is the sequence `social_posts` runs: make sure the outbox holds one row per (platform,
connection) of the week's featured Creator+ users who asked for it, work through the open ones with
the enabled platforms' clients (`run_outbox`: exactly once, under a lease) and read back where each
post stands. Plain Python: the asset fails its step when posts are left open, so its retry resumes them.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.highlights.theme import load_theme
from montage_pipeline.media.mux import video_duration
from montage_pipeline.platform.models import SocialConnection, SocialPlatform
from montage_pipeline.publishing.content import PostContent, caption, description, tags
from montage_pipeline.publishing.exports import ExportedFile
from montage_pipeline.publishing.outbox import ensure_rows
from montage_pipeline.publishing.posting import (
    PlatformClient,
    SocialPostRow,
    is_final,
    post_targets,
    run_outbox,
    week_rows,
)
from montage_pipeline.publishing.tokens import TokenCipher
from montage_pipeline.storage.media_store import MediaStore
from montage_pipeline.weeks import week_row_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PostOptions:
    attempts_per_post: int = 5  # tries with backoff within one claim
    backoff_base_s: float = 0.5  # full-jitter exponential backoff base (a Retry-After header wins)
    portrait_url_expires_s: int = 24 * 3600  # how long Instagram may take to fetch the video


# Each cut's final files (highlights/soundtrack.py and the export's names).
CUT_FILES = {
    "main": ("final_landscape.mp4", "final_portrait.mp4", "final_portrait_unbranded.mp4"),
    "short": (None, "final_short_portrait.mp4", "final_short_portrait_unbranded.mp4"),
    "long": ("final_long_landscape.mp4", None, None),
}
CUT_THUMBNAILS = {"main": "thumbnail_landscape.jpg", "long": "thumbnail_long_landscape.jpg"}
DEFAULT_CUTS = {"youtube": "main", "tiktok": "short", "instagram": "short"}


@dataclass(frozen=True, slots=True)
class WeekPosts:
    """Where the week's posts stand after this worker's pass."""

    rows: list[SocialPostRow]
    targets: int  # posts the week calls for on the enabled platforms
    added: int  # of which new outbox rows this pass
    cuts: dict[str, str] = dataclasses.field(default_factory=dict)  # platform -> the cut it posts

    @property
    def open_rows(self) -> list[SocialPostRow]:
        return [r for r in self.rows if not is_final(r)]


def post_week(
    sessions: Callable[[], Session],
    store: MediaStore,
    week: str,
    clients: Mapping[SocialPlatform, PlatformClient],
    cipher: Callable[[], TokenCipher],
    exports: Sequence[ExportedFile],
    files: Mapping[str, Path],
    spans: Sequence[EditSpan],
    worker: str,
    options: PostOptions,
    cuts: Mapping[str, str] | None = None,
    cut_spans: Mapping[str, Sequence[EditSpan]] | None = None,
) -> WeekPosts:
    """Post the week's exported `files` (name -> local path) for its featured creators; `cipher` is
    asked for only when a platform is enabled. `cuts`: which cut each platform posts (platform value ->
    "main", "short" or "long"; default short to TikTok and Reels, main to YouTube), with the other cuts'
    spans in `cut_spans`; a chosen cut the week does not have falls back to the main cut."""
    week_start = week_row_key(week)
    ordered = sorted(spans, key=lambda s: s.order)
    featured = list(dict.fromkeys(s.user_id for s in ordered))
    with sessions() as session, session.begin():
        targets = post_targets(session, featured, list(clients))
        added = ensure_rows(session, week_start, targets)
        handles = creator_handles(session, featured)
    chosen: dict[str, str] = {}
    if clients:
        featuring = ", ".join(dict.fromkeys(f"@{s.user_handle}" for s in ordered))
        platforms = ", ".join(p.value for p in clients)
        log.info("featured: %s; %d posts (%d new) on %s", featuring, len(targets), added, platforms)
        # The thumbnail's download folder lives as long as the posting, and not one run longer.
        with tempfile.TemporaryDirectory(prefix="montage-post-") as workdir:
            content = post_content(
                week, exports, files, ordered, store, options.portrait_url_expires_s, Path(workdir), handles
            )
            contents = {
                p: cut_content(
                    content,
                    p,
                    {**DEFAULT_CUTS, **(cuts or {})}[p.value],
                    CutSources(exports, files, cut_spans or {}, handles),
                    store,
                    options.portrait_url_expires_s,
                    Path(workdir),
                )
                for p in clients
            }
            chosen = {p.value: cut for p, (cut, _) in contents.items()}
            log.info("cuts posted: %s", ", ".join(f"{p}={c}" for p, c in chosen.items()))
            run_outbox(
                sessions,
                week_start,
                dict(clients),
                {p: c for p, (_, c) in contents.items()},
                cipher(),
                worker=worker,
                attempts=options.attempts_per_post,
                backoff_base_s=options.backoff_base_s,
            )
    else:
        log.info("social posting is off (YOUTUBE_API_ENABLED, TIKTOK_API_ENABLED, INSTAGRAM_API_ENABLED)")
    with sessions() as session, session.begin():
        rows = week_rows(session, week, week_start)
    return WeekPosts(rows, len(targets), added, chosen)


@dataclass(frozen=True, slots=True)
class CutSources:
    """What the cuts' post contents are made of: the export's rows, the local finals, the other cuts'
    spans (by cut) and the creators' handles per platform."""

    exports: Sequence[ExportedFile]
    files: Mapping[str, Path]
    cut_spans: Mapping[str, Sequence[EditSpan]]
    handles: Mapping[SocialPlatform, Sequence[str]]


def cut_content(
    main: PostContent,
    platform: SocialPlatform,
    cut: str,
    sources: CutSources,
    store: MediaStore,
    url_expires_s: int,
    workdir: Path,
) -> tuple[str, PostContent]:
    """The cut a platform posts, as its post content: the main cut's title and theme with the chosen
    cut's files, length and credits. A cut the week lacks (the long cut of a thin week) falls back to
    the main cut, with a log line."""
    exports, files, cut_spans, handles = sources.exports, sources.files, sources.cut_spans, sources.handles
    landscape, portrait, unbranded = CUT_FILES[cut]
    needed = landscape if platform == SocialPlatform.YOUTUBE else portrait
    spans = sorted(cut_spans.get(cut, ()), key=lambda s: s.order)
    if cut == "main" or needed is None or needed not in files or not spans:
        if cut != "main":
            log.warning("%s: no %s cut this week; posting the main cut", platform.value, cut)
        return "main", main
    by_name = {e.name: e for e in exports}
    duration = video_duration(files[needed])
    if platform == SocialPlatform.YOUTUBE:
        thumbnail = main.thumbnail
        if CUT_THUMBNAILS.get(cut) in by_name:
            thumbnail = workdir / f"thumbnail_{cut}.jpg"
            store.get_file(by_name[CUT_THUMBNAILS[cut]].key, thumbnail)
        theme = load_theme(store, main.week, spans).name
        return cut, dataclasses.replace(
            main,
            description=description(main.title, spans, duration, theme, handles.get(platform, ())),
            landscape=files[needed],
            thumbnail=thumbnail,
            duration_s=duration,
        )
    return cut, dataclasses.replace(
        main,
        caption=caption(main.title, spans),
        captions={
            p.value: caption(main.title, spans, handles[p])
            for p in (SocialPlatform.TIKTOK, SocialPlatform.INSTAGRAM)
            if handles.get(p)
        },
        portrait=files[needed],
        portrait_unbranded=files.get(unbranded or "", files[needed]),
        portrait_url=store.url(by_name[needed].key, url_expires_s)
        if needed in by_name
        else main.portrait_url,
        portrait_duration_s=duration,
    )


def creator_handles(session: Session, user_ids: Sequence[int]) -> dict[SocialPlatform, list[str]]:
    """The featured users' public handles per platform (from their connections), in `user_ids` order."""
    rank = {u: i for i, u in enumerate(user_ids)}
    found = session.execute(
        select(SocialConnection.platform, SocialConnection.user_id, SocialConnection.remote_handle).where(
            SocialConnection.user_id.in_(list(rank)), SocialConnection.remote_handle.is_not(None)
        )
    ).all()
    handles: dict[SocialPlatform, list[str]] = {}
    for platform, _, handle in sorted(found, key=lambda r: (rank[r[1]], r[2] or "")):
        if handle:
            handles.setdefault(platform, []).append(handle)
    return handles


def post_content(
    week: str,
    exports: Sequence[ExportedFile],
    files: Mapping[str, Path],
    spans: Sequence[EditSpan],
    store: MediaStore,
    portrait_url_expires_s: int,
    workdir: Path,
    handles: Mapping[SocialPlatform, Sequence[str]] | None = None,
) -> PostContent:
    """What every platform posts: the text from the edit and the week's theme (with the creators'
    `handles` on each platform @mentioned), the local files, the exported thumbnail (fetched into
    `workdir`) and a URL Instagram's servers can fetch the portrait from."""
    by_name = {e.name: e for e in exports}
    handles = handles or {}
    theme = load_theme(store, week, spans)
    title = theme.title(week)
    portrait = files["final_portrait.mp4"]
    thumbnail: Path | None = None
    if "thumbnail_landscape.jpg" in by_name:
        thumbnail = workdir / "thumbnail.jpg"
        store.get_file(by_name["thumbnail_landscape.jpg"].key, thumbnail)
    duration = video_duration(files["final_landscape.mp4"])
    return PostContent(
        week=week,
        title=title,
        description=description(title, spans, duration, theme.name, handles.get(SocialPlatform.YOUTUBE, ())),
        caption=caption(title, spans),
        captions={
            p.value: caption(title, spans, handles[p])
            for p in (SocialPlatform.TIKTOK, SocialPlatform.INSTAGRAM)
            if handles.get(p)
        },
        tags=tags(spans),
        landscape=files["final_landscape.mp4"],
        portrait=portrait,
        portrait_unbranded=files.get("final_portrait_unbranded.mp4", portrait),
        thumbnail=thumbnail,
        portrait_url=store.url(by_name["final_portrait.mp4"].key, portrait_url_expires_s),
        duration_s=duration,
        portrait_duration_s=video_duration(portrait),
    )
