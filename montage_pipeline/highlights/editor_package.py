"""The editor package: the week's cut with its media, in one zip that opens on any machine.

`editor_package.zip` holds one folder, `montage-{week}/`:
- `media/NN_creator_game.mp4`: each span's source trimmed to its in/out points plus handles (`HANDLE_S`
  each side, clamped to the clip) for trimming and dissolves in the editor. Stream copy, no re-encode:
  the copy starts at the keyframe at or before `in - handle` (a decoder needs it), so a handle can be
  longer than asked by up to one GOP; it ends at the first packet past `out + handle` in decode order;
- `music/soundtrack.m4a`: the mixed soundtrack (music and game audio as heard in the final cut);
- the timelines, relinked to those files by relative paths: `montage.otio`, `montage.xml` (FCP 7 XML),
  `montage.fcpxml`, `montage.edl` (see `editor_timeline`).

The zip is reproducible (fixed entry times, sorted entries, media stored, text deflated): the same
week gives the same bytes, so an export rerun finds its generation unchanged.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from montage_pipeline.highlights.editor_timeline import (
    SourceMedia,
    editor_timeline,
    file_stem,
    media_length,
    write_exports,
)
from montage_pipeline.highlights.rows import EditSpan

HANDLE_S = 1.0
PACKAGE_NAME = "editor_package.zip"
MEDIA_DIR, MUSIC_DIR = "media", "music"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Trim:
    """A trimmed copy: the original clip's time at its start, and its length (both from its packets)."""

    path: Path
    start_s: float
    duration_s: float
    rate: float


@dataclass(frozen=True, slots=True)
class EditorPackage:
    zip_path: Path
    timelines: dict[str, Path]  # the exported formats, relinked to the package's relative paths
    trims: dict[int, Trim]  # span order -> its trimmed media
    media_bytes: int  # the trimmed media and the soundtrack, before zipping


def trim_copy(source: Path, dest: Path, in_s: float, out_s: float, handle_s: float = HANDLE_S) -> Trim:
    """Copy `[in - handle, out + handle]` of `source` to `dest` without re-encoding.

    Starts at the keyframe at or before `in - handle`; the copy's time 0 is that keyframe.
    """
    with av.open(str(source)) as src:
        video = src.streams.video[0]
        streams = [video, *src.streams.audio[:1]]
        want_start, want_end = max(0.0, in_s - handle_s), out_s + handle_s
        if want_start > 0 and video.time_base is not None:
            src.seek(int(want_start / video.time_base), stream=video, backward=True, any_frame=False)
        with av.open(str(dest), "w", format="mp4", options={"fflags": "+bitexact"}) as out:
            mapped = {s.index: out.add_stream_from_template(s) for s in streams}
            start = _copy_packets(src, streams, video, mapped, out, want_start, want_end)
        rate = float(video.average_rate or video.guessed_rate or 30)
    duration = _video_duration(dest)
    return Trim(dest, start, duration, rate)


def _copy_packets(
    src: av.container.InputContainer,
    streams: Sequence[av.stream.Stream],
    video: av.stream.Stream,
    mapped: dict[int, av.stream.Stream],
    out: av.container.OutputContainer,
    want_start: float,
    want_end: float,
) -> float:
    """Mux the packets from the first keyframe at/before `want_start` to `want_end`; returns its time."""
    start: Fraction | None = None
    for packet in src.demux(*streams):
        if packet.pts is None or packet.dts is None or packet.time_base is None:
            continue  # the demuxer's flush packets
        t = Fraction(packet.pts) * packet.time_base
        is_video = packet.stream.index == video.index
        if start is None:
            if not (is_video and packet.is_keyframe):
                continue  # nothing before the first keyframe decodes
            start = t
        if Fraction(packet.dts) * packet.time_base > want_end:
            if is_video:
                break
            continue
        if t < start:
            continue
        shift = round(start / packet.time_base)
        packet.pts -= shift
        packet.dts -= shift
        packet.stream = mapped[packet.stream.index]
        out.mux(packet)
    if start is None:
        raise ValueError(f"no keyframe to start a copy at {want_start:.3f}s")
    return float(start)


def _video_duration(path: Path) -> float:
    """The copy's length from its video packets (its last frame's end), not the container's claim."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        end = 0.0
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        return end


def build_package(
    week: str,
    spans: Sequence[EditSpan],
    soundtrack: Path | None,
    workdir: Path,
    *,
    duration_s: float | None = None,
    handle_s: float = HANDLE_S,
) -> EditorPackage:
    """Trim the spans' sources, copy the soundtrack, write the relinked timelines and zip them.

    Raises `FileNotFoundError` when a span's source is gone (nothing is zipped then).
    """
    root = workdir / f"montage-{week}"
    (root / MEDIA_DIR).mkdir(parents=True, exist_ok=True)
    trims = {}
    for span in spans:
        source = Path(span.source_path)
        if not source.is_file():
            raise FileNotFoundError(f"span {span.order}: source {source.name} is missing")
        dest = root / MEDIA_DIR / f"{file_stem(span)}.mp4"
        trims[span.order] = trim_copy(source, dest, span.source_in_s, span.source_out_s, handle_s)
    sources = {
        order: SourceMedia(f"{MEDIA_DIR}/{t.path.name}", t.start_s, t.duration_s, t.rate)
        for order, t in trims.items()
    }
    music = None
    media_bytes = sum(t.path.stat().st_size for t in trims.values())
    if soundtrack is not None:
        (root / MUSIC_DIR).mkdir(exist_ok=True)
        copied = Path(shutil.copyfile(soundtrack, root / MUSIC_DIR / "soundtrack.m4a"))
        music = SourceMedia(f"{MUSIC_DIR}/{copied.name}", 0.0, media_length(copied), 30.0)
        media_bytes += copied.stat().st_size
    timeline = editor_timeline(week, spans, sources=sources, music=music, duration_s=duration_s, public=True)
    timelines = write_exports(timeline, root)
    zip_path = workdir / PACKAGE_NAME
    _zip(root, zip_path)
    return EditorPackage(zip_path, timelines, trims, media_bytes)


def _zip(root: Path, zip_path: Path) -> None:
    """The folder as a reproducible zip: sorted entries, fixed times, media stored, text deflated."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(root.parent)), _ZIP_TIME)
            media = path.suffix in {".mp4", ".m4a"}
            info.compress_type = zipfile.ZIP_STORED if media else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with path.open("rb") as f, archive.open(info, "w") as entry:
                shutil.copyfileobj(f, entry, 1 << 20)
