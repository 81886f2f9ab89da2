"""The week's cut as an editor gets it: every exported format read back through OpenTimelineIO's official
adapters (otio_json, fcp_xml, fcpx_xml, cmx_3600) holds the same spans, in/out points to the frame,
transitions and tracks; the package unzipped elsewhere resolves every media reference.

Real H.264/AAC clips from `media/synth.py` (small, 8 s) and a real AAC soundtrack; a week with dissolves.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest

from montage_pipeline.highlights.editor_package import EditorPackage, build_package
from montage_pipeline.highlights.editor_timeline import EXPORT_FORMATS, video_only
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.mux import RATE, encode_soundtrack
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline_tests.test_exports_parts import _span

WEEK = "2025-01-27"
FPS = 30
CUT_S = 13.0  # 2 s title card, three 3 s spans, 2 s end card


@pytest.fixture(scope="module")
def spans(tmp_path_factory: pytest.TempPathFactory) -> list[EditSpan]:
    """Three spans; the second and third dissolve in; the third clip has no audio."""
    root = tmp_path_factory.mktemp("clips")
    out = []
    for i in range(3):
        source = root / f"user{i + 1}" / "clip.mp4"
        write_clip(source, plan_clip(8.0, FPS, seed=900 + i, width=320, height=180, has_audio=i < 2))
        at = 2.0 + 3 * i
        out.append(
            replace(
                _span(i + 1, source),
                source_in_s=1.0 + 1.5 * i,
                source_out_s=4.0 + 1.5 * i,
                montage_in_s=at,
                montage_out_s=at + 3.0,
                peak_source_s=2.0 + 1.5 * i,
                peak_montage_s=at + 1.0,
                transition_in="dissolve" if i else "cut",
                transition_s=0.5 if i else 0.0,
                source_has_audio=i < 2,
            )
        )
    return out


@pytest.fixture(scope="module")
def package(spans: list[EditSpan], tmp_path_factory: pytest.TempPathFactory) -> EditorPackage:
    root = tmp_path_factory.mktemp("package")
    t = np.arange(round(CUT_S * RATE)) / RATE
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    encode_soundtrack(np.stack([tone, tone]), root / "soundtrack.m4a")
    return build_package(WEEK, spans, root / "soundtrack.m4a", root / "out", duration_s=CUT_S)


def _read(path: Path) -> otio.schema.Timeline:
    # A CMX 3600 EDL states no frame rate: the reader must be told the timeline's.
    extra = {"rate": FPS} if path.suffix == ".edl" else {}
    timeline = otio.adapters.read_from_file(str(path), **extra)
    assert isinstance(timeline, otio.schema.Timeline)
    return timeline


def _frames(t: otio.opentime.RationalTime) -> int:
    return round(t.rescaled_to(FPS).value)


def _edit(track: otio.schema.Track) -> list[tuple[str, int, int, int]]:
    """(clip name, source in, source out, record in) in frames; transitions as ("dissolve", 0, frames, at)."""
    out = []
    for item in track:
        if isinstance(item, otio.schema.Clip):
            src = item.source_range
            assert src is not None
            at = _frames(track.range_of_child(item).start_time)
            out.append((item.name, _frames(src.start_time), _frames(src.end_time_exclusive()), at))
        elif isinstance(item, otio.schema.Transition):
            out.append(("dissolve", _frames(item.in_offset), _frames(item.out_offset), -1))
    return out


def test_every_format_holds_the_same_spans_points_transitions_and_tracks(
    spans: list[EditSpan], package: EditorPackage
) -> None:
    assert set(package.timelines) == set(EXPORT_FORMATS)
    timelines = {name: _read(path) for name, path in package.timelines.items()}
    edl = _edit(timelines["montage.edl"].video_tracks()[0])
    # What the spans say, to the frame, in each trimmed file's own time.
    expected = []
    for span in spans:
        start = package.trims[span.order].start_s
        if span.transition_in == "dissolve":
            expected.append(("dissolve", 0, round(span.transition_s * FPS), -1))
        source_in = round((span.source_in_s - start) * FPS)
        length = round(span.montage_out_s * FPS) - round(span.montage_in_s * FPS)
        expected.append((f"{span.order:02d} {span.credit}", source_in, source_in + length, -1))
    assert [e[:3] for e in edl] == [e[:3] for e in expected]
    assert [e[0] for e in expected].count("dissolve") == 2
    for name in ("montage.otio", "montage.xml"):
        video = timelines[name].video_tracks()[0]
        assert _edit(video) == _edit(timelines["montage.otio"].video_tracks()[0]), name
        assert [e[:3] for e in _edit(video)] == [e[:3] for e in edl], name
        # Record in: the title card's gap first, each span where the render put it.
        placed = [e[3] for e in _edit(video) if e[0] != "dissolve"]
        assert placed == [round(s.montage_in_s * FPS) for s in spans], name
    # FCPXML (through its adapter) carries the clips and tracks, not the transitions.
    fcpx = _edit(timelines["montage.fcpxml"].video_tracks()[0])
    assert [e[:3] for e in fcpx] == [e[:3] for e in edl if e[0] != "dissolve"]
    for name in ("montage.otio", "montage.xml", "montage.fcpxml"):
        timeline = timelines[name]
        assert (len(timeline.video_tracks()), len(timeline.audio_tracks())) == (1, 2), name
        game, music = sorted(timeline.audio_tracks(), key=lambda t: len(list(t.find_clips())), reverse=True)
        # Game audio: the two clips that have sound, at their pictures' points; the third is a gap.
        game_clips = [e[:3] for e in _edit(game) if e[0] != "dissolve"]
        assert game_clips == [e[:3] for e in fcpx[:2]], name
        assert [c.name for c in music.find_clips()] == ["soundtrack"], name
        assert _frames(music.duration()) == round(CUT_S * FPS), name
    assert len(timelines["montage.edl"].tracks) == 1  # CMX 3600: the picture track only


def test_the_otio_timeline_says_what_each_span_is_and_marks_peaks_and_cards(
    spans: list[EditSpan], package: EditorPackage
) -> None:
    timeline = _read(package.timelines["montage.otio"])
    clips = list(timeline.video_tracks()[0].find_clips())
    for span, clip in zip(spans, clips, strict=True):
        about = clip.metadata["montage"]
        assert (about["creator"], about["game"], about["score"]) == (span.user_handle, span.game, span.score)
        assert "clip_id" not in about  # the package is public
        (peak,) = clip.markers
        start = package.trims[span.order].start_s
        assert _frames(peak.marked_range.start_time) == round((span.peak_source_s - start) * FPS)
        reference = clip.media_reference
        assert isinstance(reference, otio.schema.ExternalReference) and reference.available_range
        assert reference.available_range.start_time.rate == FPS
    cards = {m.name: m.marked_range for m in timeline.tracks.markers}
    assert _frames(cards["title card"].duration) == round(spans[0].intro_s * FPS)
    assert _frames(cards["end card"].end_time_exclusive()) == round(CUT_S * FPS)
    # The FCP 7 XML keeps the peak markers too.
    xml = _read(package.timelines["montage.xml"])
    assert [len(c.markers) for c in xml.video_tracks()[0].find_clips()] == [1, 1, 1]


def _media_length(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


def test_the_package_unzipped_elsewhere_resolves_every_media_reference(
    package: EditorPackage, tmp_path: Path
) -> None:
    with zipfile.ZipFile(package.zip_path) as archive:
        assert archive.testzip() is None
        archive.extractall(tmp_path / "elsewhere")
    (folder,) = (tmp_path / "elsewhere").iterdir()
    # Each clip's file, by clip name. The CMX 3600 reader (otio-cmx3600-adapter 1.0.0) gives a dissolve's
    # incoming clip the outgoing one's "FROM CLIP" file, so the EDL's clips are resolved by their names;
    # the EDL's own file comments are checked as text below.
    files = {
        c.name: c.media_reference.target_url
        for c in _read(folder / "montage.otio").find_clips()
        if isinstance(c.media_reference, otio.schema.ExternalReference)
    }
    checked = 0
    for name in EXPORT_FORMATS:
        text = (folder / name).read_text()
        assert "file://" not in text and str(package.zip_path.parent) not in text, name
        for clip in _read(folder / name).find_clips():
            reference = clip.media_reference
            assert isinstance(reference, otio.schema.ExternalReference), (name, clip.name)
            media = folder / (files[clip.name] if name == "montage.edl" else reference.target_url)
            assert media.is_file(), (name, reference.target_url)
            # The file covers the range the clip plays.
            assert _media_length(media) + 1e-3 >= clip.source_range.end_time_exclusive().to_seconds()
            checked += 1
    edl_files = {
        line.split("CLIP: ")[1]
        for line in (folder / "montage.edl").read_text().splitlines()
        if "CLIP: " in line
    }
    assert edl_files == {files[f"{i:02d} @user{i} · Apex"] for i in (1, 2, 3)}
    assert all((folder / f).is_file() for f in edl_files)
    assert checked == 3 * (3 + 2 + 1) + 3  # otio, xml, fcpxml: V1, A1 (clip 3 has no sound), A2; edl: V1


def test_trims_are_stream_copies_with_handles_and_the_zip_is_reproducible(
    spans: list[EditSpan], package: EditorPackage, tmp_path: Path
) -> None:
    for span in spans:
        trim = package.trims[span.order]
        assert trim.start_s <= max(0.0, span.source_in_s - 1.0)  # the handle before, from a keyframe
        assert trim.start_s + trim.duration_s >= min(8.0, span.source_out_s + 1.0) - 1 / FPS
        with av.open(span.source_path) as src, av.open(str(trim.path)) as copy:
            original = [bytes(p) for p in src.demux(src.streams.video[0]) if p.size]
            copied = [bytes(p) for p in copy.demux(copy.streams.video[0]) if p.size]
        # The very packets of the source, in order: not one frame re-encoded.
        first = original.index(copied[0])
        assert original[first : first + len(copied)] == copied
    soundtrack = package.zip_path.parent / ".." / "soundtrack.m4a"
    again = build_package(WEEK, spans, soundtrack.resolve(), tmp_path / "again", duration_s=CUT_S)
    assert again.zip_path.read_bytes() == package.zip_path.read_bytes()


def test_a_cut_without_dissolves_has_no_transitions_and_cmx_gets_the_picture_only(
    spans: list[EditSpan], tmp_path: Path
) -> None:
    from montage_pipeline.highlights.edl_export import to_otio

    cut = [replace(s, transition_in="cut", transition_s=0.0) for s in spans]
    timeline = to_otio(WEEK, cut)  # the internal timeline: the server's files, their lengths
    assert not [i for t in timeline.tracks for i in t if isinstance(i, otio.schema.Transition)]
    for clip in timeline.video_tracks()[0].find_clips():
        reference = clip.media_reference
        assert isinstance(reference, otio.schema.ExternalReference)
        assert reference.target_url.startswith("file://") and reference.available_range is not None
        assert reference.available_range.duration.to_seconds() == pytest.approx(8.0, abs=0.1)
    picture = video_only(timeline)  # held: OTIO's Python wrappers do not keep a temporary's tracks alive
    assert [t.kind for t in picture.tracks] == [otio.schema.TrackKind.Video]
    assert len(timeline.tracks) == 2  # picture and game audio (the music comes with the package)


def test_a_source_gone_from_the_server_leaves_the_package_out_and_keeps_a_relinkable_timeline(
    spans: list[EditSpan], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from montage_pipeline.publishing.week_export import editor_items

    gone = [*spans[:2], replace(spans[2], source_path=str(tmp_path / "deleted.mp4"))]
    items = editor_items(WEEK, {}, gone, tmp_path, "public")
    assert [i.name for i in items] == ["montage.otio"]
    assert "deleted.mp4 is missing" in caplog.text
    timeline = _read(items[0].path)
    references = [c.media_reference for c in timeline.video_tracks()[0].find_clips()]
    assert [r.name for r in references if isinstance(r, otio.schema.MissingReference)] == [
        f"{s.order:02d} {s.credit}" for s in spans
    ]
