"""The long cut's spans of the main cut's moments (`cuts.as_in_main`): the main cut's source range and
beats on the long cut's grid, the source moved by under a frame so that both renders pick the same
source frame on every output frame, to float rounding (a 60 fps source's frames sit exactly on a 30 fps
grid's times, so a 0.1 ms rounding would take the neighbouring frame on every other output frame)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from montage_pipeline.highlights.cuts import as_in_main
from montage_pipeline.highlights.render_plan import render_spans
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.span_copies import shared_spans, source_offset, span_frames

TEMPO = 125.0  # 0.48 s beats: 14.4 frames at 30 fps, so the two cuts' grids fall differently on frames
BEAT = 60.0 / TEMPO
INTRO_BEATS = 8


def _span(
    order: int, clip: str, in_beat: int, beats: int, source_in: float, peak_lead_beats: int
) -> EditSpan:
    m_in, m_out = round(in_beat * BEAT, 4), round((in_beat + beats) * BEAT, 4)
    return EditSpan(
        order=order,
        clip_id=clip,
        job_id=order,
        user_id=order,
        user_handle=clip,
        game="Apex",
        source_path=f"/clips/{clip}.mp4",
        source_sha256=clip,
        source_in_s=source_in,
        source_out_s=round(source_in + beats * BEAT, 4),
        montage_in_s=m_in,
        montage_out_s=m_out,
        peak_source_s=round(source_in + peak_lead_beats * BEAT, 4),
        peak_montage_s=round(m_in + peak_lead_beats * BEAT, 4),
        peak_on_downbeat=(in_beat + peak_lead_beats) % 4 == 0,
        in_beat=in_beat,
        out_beat=in_beat + beats,
        tempo_bpm=TEMPO,
        beat_s=round(BEAT, 6),
        intro_s=round(INTRO_BEATS * BEAT, 6),
        score=0.5 + order / 100,
        score_breakdown={},
        credit=f"@{clip} · Apex",
        transition_in="cut",
        transition_s=0.0,
        source_fps=60.0,
        source_width=1920,
        source_height=1080,
        source_rotation=0,
        source_has_audio=True,
    )


def _cuts() -> tuple[list[EditSpan], list[EditSpan]]:
    main = [
        _span(1, "a", 8, 20, 3.1234, 8),  # peak on beat 16: a downbeat
        _span(2, "b", 28, 24, 1.0107, 8),  # peak on beat 36
        _span(3, "c", 52, 28, 0.5003, 12),  # peak on beat 64
    ]
    # The long cut's own fit: the shared moments at other lengths and in-points, and moments of its own.
    long = [
        _span(1, "a", 8, 22, 2.6434, 9),
        _span(2, "x", 30, 17, 4.2, 6),
        _span(3, "b", 47, 26, 0.5307, 9),
        _span(4, "y", 73, 21, 2.0, 7),
        _span(5, "c", 94, 30, 0.0203, 13),
    ]
    return main, long


@pytest.mark.parametrize("fps", [30, 60])
def test_a_shared_moment_is_the_main_cuts_span_on_the_same_source_frames(fps: int) -> None:
    main, long = _cuts()
    shown = as_in_main(long, main, fps)
    assert [s.clip_id for s in shown] == [s.clip_id for s in long]  # the long cut's order
    by_clip = {m.clip_id: m for m in main}
    for s in shown:
        assert s.montage_in_s == pytest.approx(s.in_beat * BEAT, abs=1e-4)  # still on the beat grid
        if s.clip_id in by_clip:
            m = by_clip[s.clip_id]
            assert s.out_beat - s.in_beat == m.out_beat - m.in_beat
            assert abs(s.source_in_s - m.source_in_s) < 1 / fps
            assert s.peak_on_downbeat  # the long-only span before it gave up beats to keep it there
    for a, b in itertools.pairwise(shown):
        assert a.montage_out_s == b.montage_in_s
    long_spans, main_spans = render_spans(shown, {}), render_spans(main, {})
    long_frames = span_frames(long_spans, shown[0].intro_s, fps)
    main_frames = span_frames(main_spans, main[0].intro_s, fps)
    for i, rs in enumerate(long_spans):
        j = next((j for j, ms in enumerate(main_spans) if ms.source_path == rs.source_path), None)
        if j is not None:
            gap = source_offset(rs, long_frames[i][0], fps) - source_offset(
                main_spans[j], main_frames[j][0], fps
            )
            assert abs(gap) < 1e-9  # the same source time on every output frame, to float rounding
    shared = shared_spans(long_spans, shown[0].intro_s, main_spans, main[0].intro_s, fps)
    assert set(shared) <= {0, 2, 4} and shared  # only the main cut's moments, and some of them


def test_a_cut_without_the_main_cuts_moments_is_unchanged() -> None:
    main, long = _cuts()
    own = [s for s in long if s.clip_id in ("x", "y")]
    own = [dataclasses.replace(own[0], order=1, in_beat=8, out_beat=25, montage_in_s=round(8 * BEAT, 4))]
    assert as_in_main(own, main, 30)[0].source_in_s == own[0].source_in_s
