"""A render that copies the spans another render already encoded: the pieces it copies are that file's
packets, byte for byte; the result is the file a plain render of its spans gives (same frames to encoder
noise, length, spec, still stretches); and only spans that show the same source frames are copied."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.media.render import EncodeSettings, OutputSpec, RenderSpan, encoded_spec, render
from montage_pipeline.media.span_copies import render_copying, shared_from, shared_spans, span_frames
from montage_pipeline.media.specs import inspect_video, spec_failures
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline_tests.media.pictures import lumas, psnr

FPS = 30
SIZE = (640, 360)
MAIN_INTRO, LONG_INTRO = 1.0, 0.5


def _frozen_clip(path: Path, seconds: float = 6.0) -> None:
    """Moving noise with a held picture from 2 s to 4 s: a frozen stretch inside the clip."""
    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        held = None
        for i in range(round(seconds * FPS)):
            if 2 * FPS <= i < 4 * FPS:
                held = held if held is not None else rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
                picture = held
            else:
                picture = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("copy_src")
    paths = []
    for i in range(3):
        path = d / f"src{i}.mp4"
        write_clip(path, plan_clip(7.0, FPS, seed=500 + i, width=320, height=180))
        paths.append(path)
    frozen = d / "frozen.mp4"
    _frozen_clip(frozen)
    return [*paths, frozen]


def _span(
    source: Path, src_in: float, m_in: float, length: float, name: str, score: float = 0.5
) -> RenderSpan:
    return RenderSpan(source, src_in, src_in + length, m_in, m_in + length, f"@{name} · Game", score=score)


def _cuts(sources: list[Path]) -> tuple[list[RenderSpan], list[RenderSpan]]:
    """A main cut of three moments and a longer cut that shows two of them as the main cut does (the same
    source times on its own frame grid), one more of its own, and the frozen clip's moment in both."""
    a, b, c, frozen = sources
    main = [
        _span(a, 0.5, 1.0, 2.0, "a"),
        _span(frozen, 1.0, 3.0, 2.5, "f", score=0.9),
        _span(b, 1.0, 5.5, 2.0, "b"),
    ]
    long = [
        _span(a, 0.5, 0.5, 2.0, "a"),  # same source frames on every output frame: copied
        _span(c, 2.0, 2.5, 1.5, "c"),  # the long cut's own
        _span(frozen, 1.0, 4.0, 2.5, "f", score=0.9),  # copied: the frozen stretch and the best frame
        _span(b, 1.3, 6.5, 2.0, "b"),  # the same clip from another in-point: encoded
    ]
    return main, long


def _packets(path: Path, first: int, end: int) -> list[bytes]:
    """The file's packets of frames [first, end), in decode order."""
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        assert video.time_base is not None
        start = video.start_time or 0
        return [
            bytes(p)
            for p in c.demux(video)
            if p.pts is not None and first <= round((p.pts - start) * video.time_base * FPS) < end
        ]


def test_shared_spans_are_the_ones_showing_the_same_source_frames(sources: list[Path]) -> None:
    main, long = _cuts(sources)
    assert shared_spans(long, LONG_INTRO, main, MAIN_INTRO, FPS) == {0: 0, 2: 1}
    # Half a frame later in the source: other frames on the output grid, nothing to copy.
    nudged = [
        replace(s, source_in_s=s.source_in_s + 0.5 / FPS, source_out_s=s.source_out_s + 0.5 / FPS)
        for s in long
    ]
    assert shared_spans(nudged, LONG_INTRO, main, MAIN_INTRO, FPS) == {}
    # A dissolve into the span mixes in the span before it: not the main cut's picture.
    dissolving = [long[0], long[1], replace(long[2], transition_in="dissolve", transition_s=0.5), long[3]]
    assert shared_spans(dissolving, LONG_INTRO, main, MAIN_INTRO, FPS) == {0: 0}
    # Another credit plate: another picture.
    credited = [replace(long[0], credit="@z · Game"), *long[1:]]
    assert shared_spans(credited, LONG_INTRO, main, MAIN_INTRO, FPS) == {2: 1}


def test_a_copied_render_is_the_plain_render_with_the_main_files_packets(
    sources: list[Path], tmp_path: Path
) -> None:
    main, long = _cuts(sources)
    settings = EncodeSettings(fps=FPS)
    shared = shared_spans(long, LONG_INTRO, main, MAIN_INTRO, FPS)
    main_spec = OutputSpec(tmp_path / "main.mp4", *SIZE, pieces=tuple(shared.values()))
    (main_report,) = render(main, [main_spec], settings, title="Main", intro_s=MAIN_INTRO)
    assert sorted(main_report.pieces) == [0, 1]

    out = OutputSpec(tmp_path / "long.mp4", *SIZE)
    copies = {i: shared_from(main_report, j) for i, j in shared.items()}
    report = render_copying(long, out, settings, copies, title="Long", intro_s=LONG_INTRO)
    (plain,) = render(
        long, [replace(out, path=tmp_path / "plain.mp4")], settings, title="Long", intro_s=LONG_INTRO
    )

    # The copied spans are the main file's packets, byte for byte.
    long_frames = span_frames(long, LONG_INTRO, FPS)
    for i, j in shared.items():
        piece = main_report.pieces[j]
        assert piece.frames == long_frames[i][1] - long_frames[i][0]
        copied = _packets(report.path, *long_frames[i])
        assert copied and copied == _packets(
            main_spec.path, piece.first_frame, piece.first_frame + piece.frames
        )

    assert report.copied_spans == 2
    # And the file is what a plain render of the long cut gives.
    assert (report.frames, report.span_first_frames) == (plain.frames, plain.span_first_frames)
    assert len(report.span_thumbnails) == len(long)
    assert report.best_frame is not None
    ours, theirs = lumas(report.path), lumas(plain.path)
    assert len(ours) == len(theirs) == plain.frames
    quality = [psnr(a, b) for a, b in zip(ours, theirs, strict=True)]
    assert min(quality) > 30, f"worst frame {int(np.argmin(quality))}: {min(quality):.1f} dB"
    spec = encoded_spec(report)
    assert (spec.width, spec.height, spec.fps, spec.constant_fps) == (*SIZE, FPS, True)
    assert spec.duration_s == pytest.approx(encoded_spec(plain).duration_s, abs=0.5 / FPS)
    # The frozen stretch inside a copied span is reported where it is in the long cut, as a decode of the
    # finished file finds it (and as the plain render measured it).
    assert len(report.still_spans) == 1
    decoded = inspect_video(report.path).black_or_frozen_spans
    for found in (decoded, plain.still_spans):
        assert len(found) == 1
        assert report.still_spans[0] == pytest.approx(found[0], abs=0.1)
    failures = spec_failures(spec, width=SIZE[0], height=SIZE[1], allowed_stills=((0.0, LONG_INTRO + 0.2),))
    assert any("frozen" in f or "black" in f for f in failures)  # the check still sees it


def test_the_main_render_keeps_its_pieces_as_closed_gops(sources: list[Path], tmp_path: Path) -> None:
    """An IDR picture where a kept span starts and where the next one starts."""
    main, _ = _cuts(sources)
    settings = EncodeSettings(fps=FPS)
    spec = OutputSpec(tmp_path / "main.mp4", *SIZE, pieces=(1,))
    (report,) = render(main, [spec], settings, title="Main", intro_s=MAIN_INTRO)
    piece = report.pieces[1]
    first, end = span_frames(main, MAIN_INTRO, FPS)[1]
    assert (piece.first_frame, piece.frames) == (first, end - first)
    with av.open(str(report.path)) as c:
        keys = {i for i, f in enumerate(c.decode(video=0)) if f.key_frame}
    assert {piece.first_frame, piece.first_frame + piece.frames} <= keys


def test_a_span_a_frame_longer_in_the_main_cut_is_copied_when_an_encoded_span_follows(
    sources: list[Path], tmp_path: Path
) -> None:
    """The two cuts' beat grids fall differently on the frame grid: the copied span keeps the main cut's
    frame count and the encoded span after it starts a frame later; the cut's length is unchanged."""
    a, b, c, _ = sources
    main = [_span(a, 0.5, 1.0, 2.0, "a"), _span(b, 1.0, 3.0, 2.0, "b")]
    # The long cut's grid starts a third of a frame into a frame: its first span has one frame fewer.
    m_in = LONG_INTRO + 1 / (3 * FPS)
    shift = (math.ceil(MAIN_INTRO * FPS) / FPS - MAIN_INTRO) - (math.ceil(m_in * FPS) / FPS - m_in)
    long = [
        RenderSpan(a, 0.5 + shift, 0.5 + shift + 2.5 - m_in, m_in, 2.5, "@a · Game"),
        _span(c, 2.0, 2.5, 1.5, "c"),
    ]
    intro = m_in
    shared = shared_spans(long, intro, main, MAIN_INTRO, FPS)
    assert shared == {0: 0}
    frames = span_frames(long, intro, FPS)
    main_frames = span_frames(main, MAIN_INTRO, FPS)
    assert frames[0][1] - frames[0][0] != main_frames[0][1] - main_frames[0][0]
    # Not when it ends the cut: nothing after it could take the frame up.
    assert shared_spans(long[:1], intro, main, MAIN_INTRO, FPS) == {}

    settings = EncodeSettings(fps=FPS)
    (main_report,) = render(
        main, [OutputSpec(tmp_path / "main.mp4", *SIZE, pieces=(0,))], settings, title="M", intro_s=MAIN_INTRO
    )
    report = render_copying(
        long,
        OutputSpec(tmp_path / "long.mp4", *SIZE),
        settings,
        {0: shared_from(main_report, 0)},
        title="L",
        intro_s=intro,
    )
    assert report.frames == frames[-1][1]
    assert report.span_first_frames == [frames[0][0], frames[0][0] + main_report.pieces[0].frames]
    assert len(lumas(report.path)) == report.frames


def test_pieces_from_a_file_encoded_otherwise_are_not_joined(sources: list[Path], tmp_path: Path) -> None:
    """A main file encoded with other stream headers (here another preset: CAVLC instead of CABAC) cannot
    share its packets: the long cut is encoded whole, and says it copied nothing."""
    main, long = _cuts(sources)
    shared = shared_spans(long, LONG_INTRO, main, MAIN_INTRO, FPS)
    other = EncodeSettings(fps=FPS, preset="ultrafast")
    main_spec = OutputSpec(tmp_path / "main.mp4", *SIZE, pieces=tuple(shared.values()))
    (main_report,) = render(main, [main_spec], other, title="Main", intro_s=MAIN_INTRO)
    copies = {i: shared_from(main_report, j) for i, j in shared.items()}
    out = OutputSpec(tmp_path / "long.mp4", *SIZE)
    report = render_copying(long, out, EncodeSettings(fps=FPS), copies, title="Long", intro_s=LONG_INTRO)
    assert report.copied_spans == 0
    assert report.frames == span_frames(long, LONG_INTRO, FPS)[-1][1]
    assert len(lumas(report.path)) == report.frames
    assert not list(tmp_path.glob(".long.part*"))  # no piece left behind
