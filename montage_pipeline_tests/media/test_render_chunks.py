"""The chunked render: pieces encoded apart at hard cuts and joined by stream copy give the file a
single-step render gives: the same frames (to encoder noise), duration, spec, and no seam."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.media.render import (
    EncodeSettings,
    OutputSpec,
    RenderReport,
    RenderSpan,
    encoded_spec,
    render,
)
from montage_pipeline.media.render_chunks import join_chunks, join_reports, plan_chunks
from montage_pipeline.media.specs import spec_failures
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline_tests.media.pictures import lumas, psnr

FPS = 30
INTRO = 1.0
SIZES = {"land": (640, 360), "port": (360, 640)}


@pytest.fixture(scope="module")
def edl(tmp_path_factory: pytest.TempPathFactory) -> list[RenderSpan]:
    """Five 2.5 s spans of four generated clips; the third dissolves from the second."""
    d = tmp_path_factory.mktemp("chunk_src")
    sources = []
    for i, fps in enumerate((30, 60, 30, 30)):
        path = d / f"src{i}.mp4"
        write_clip(path, plan_clip(7.0, fps, seed=300 + i, width=320, height=180))
        sources.append(path)
    spans, m = [], INTRO
    for i in range(5):
        dissolve = i == 2
        spans.append(
            RenderSpan(
                sources[i % 4],
                1.0 + 0.5 * i,
                3.5 + 0.5 * i,
                m,
                m + 2.5,
                f"@p{i} · Game",
                score=float(i),
                transition_in="dissolve" if dissolve else "cut",
                transition_s=0.5 if dissolve else 0.0,
            )
        )
        m += 2.5
    return spans


def _outputs(folder: Path, tag: str) -> list[OutputSpec]:
    return [OutputSpec(folder / f"{name}_{tag}.mp4", w, h) for name, (w, h) in SIZES.items()]


def _keyframe_indices(path: Path) -> set[int]:
    with av.open(str(path)) as c:
        return {i for i, f in enumerate(c.decode(video=0)) if f.key_frame}


def test_pieces_joined_by_stream_copy_are_the_single_step_render(
    edl: list[RenderSpan], tmp_path: Path
) -> None:
    settings = EncodeSettings(fps=FPS)
    single = render(edl, _outputs(tmp_path, "single"), settings, title="T", intro_s=INTRO)

    chunks = plan_chunks(edl, FPS, INTRO, chunks=3)
    assert len(chunks) == 3
    assert [c.first_span for c in chunks] == sorted({c.first_span for c in chunks})
    assert all(edl[c.first_span].transition_in == "cut" for c in chunks)  # never inside a dissolve
    assert chunks[-1].end_span == len(edl)
    pieces: list[list[RenderReport]] = []
    for i, chunk in enumerate(chunks):  # each as a worker would: its own call, its own files
        pieces.append(
            render(edl, _outputs(tmp_path, f"part{i}"), settings, title="T", intro_s=INTRO, chunk=chunk)
        )

    seams = [c.first_frame for c in chunks[1:]]
    for o, (name, (w, h)) in enumerate(SIZES.items()):
        joined = tmp_path / f"{name}_joined.mp4"
        join_chunks([p[o].path for p in pieces], joined)
        report = join_reports([p[o] for p in pieces], joined)
        ref = single[o]

        assert (report.frames, report.span_first_frames) == (ref.frames, ref.span_first_frames)
        assert report.still_spans == ref.still_spans
        spec, ref_spec = encoded_spec(report), encoded_spec(ref)
        assert spec.duration_s == pytest.approx(ref_spec.duration_s, abs=0.5 / FPS)
        assert (spec.width, spec.height, spec.fps, spec.constant_fps) == (w, h, FPS, True)
        assert spec_failures(spec, width=w, height=h, allowed_stills=((0.0, INTRO + 0.2),)) == []

        ours, theirs = lumas(joined), lumas(ref.path)
        assert len(ours) == len(theirs) == ref.frames
        quality = [psnr(a, b) for a, b in zip(ours, theirs, strict=True)]
        assert min(quality) > 32, f"worst frame {int(np.argmin(quality))}: {min(quality):.1f} dB"
        for k in seams:  # no seam: the pictures either side are the single render's, and a new GOP starts
            assert min(quality[k - 1], quality[k]) > 32
            assert k in _keyframe_indices(joined)


def test_a_week_without_hard_cuts_is_one_piece(edl: list[RenderSpan]) -> None:
    dissolving = [edl[0], *(replace(s, transition_in="dissolve", transition_s=0.5) for s in edl[1:])]
    assert [(c.first_span, c.end_span, c.first_frame) for c in plan_chunks(dissolving, FPS, INTRO, 4)] == [
        (0, len(edl), 0)
    ]


def test_still_runs_join_across_a_seam_only(tmp_path: Path) -> None:
    """A still held across a seam is one stretch (and fails the spec when long); a still title card
    followed by a calm first shot inside one piece stays two short stretches, as in a single render."""
    path = tmp_path / "joined.mp4"
    path.write_bytes(b"x")

    def piece(frames: int, stills: tuple[tuple[float, float], ...]) -> RenderReport:
        return RenderReport(path, 640, 360, FPS, frames=frames, still_spans=stills)

    title_then_calm = piece(150, ((0.0, 3.867), (3.867, 4.6)))  # 5 s piece: two runs meet inside it
    held_to_the_end = piece(60, ((5.5, 7.0),))  # ends with a still picture at the seam, 7 s
    held_from_start = piece(90, ((7.0, 8.2),))  # and the next piece opens on it
    joined = join_reports([title_then_calm, held_to_the_end, held_from_start], path)
    assert joined.still_spans == ((0.0, 3.867), (5.5, 8.2))
