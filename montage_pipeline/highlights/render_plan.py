"""From EDL rows to render spans: source facts, action tracks for the portrait crop, the Shorts limit."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from montage_pipeline.highlights.analysis_cache import load_key
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.media.reframe import ActionTrack
from montage_pipeline.media.render import RenderSpan
from montage_pipeline.storage.media_store import MediaStore

PORTRAIT_MAX_S = 180.0  # YouTube Shorts' limit, also fine for Reels and TikTok


def output_fps(spans: Sequence[EditSpan], configured: int) -> int:
    """The configured rate, else 60 when most of the montage's sources are 60 fps, else 30."""
    if configured:
        return configured
    votes = Counter(60 if s.source_fps > 45 else 30 for s in spans)
    return 60 if votes[60] > votes[30] else 30


def action_tracks(
    spans: Sequence[EditSpan], scenes: Sequence[SceneSegment], store: MediaStore
) -> dict[str, ActionTrack]:
    keys = {s.clip_id: s.analysis_key for s in scenes}
    tracks: dict[str, ActionTrack] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip_id in {s.clip_id for s in spans}:
            if clip_id in keys and (analysis := load_key(store, keys[clip_id], Path(tmp))) is not None:
                t = analysis.tracks
                tracks[clip_id] = ActionTrack(t.frame_times_s, t.action_x, t.action_spread)
    return tracks


def render_spans(
    spans: Sequence[EditSpan], tracks: dict[str, ActionTrack], max_duration_s: float | None = None
) -> list[RenderSpan]:
    """Render spans in montage order; with `max_duration_s`, the montage is cut there (on a beat)."""
    out: list[RenderSpan] = []
    for s in sorted(spans, key=lambda s: s.order):
        out_m, out_src = s.montage_out_s, s.source_out_s
        if max_duration_s is not None and out_m > max_duration_s:
            keep_beats = int((max_duration_s - s.montage_in_s) / s.beat_s)
            if keep_beats < 4:  # under a bar left: stop before this span
                break
            out_m = s.montage_in_s + keep_beats * s.beat_s
            out_src = s.source_in_s + keep_beats * s.beat_s
        out.append(
            RenderSpan(
                source_path=Path(s.source_path),
                source_in_s=s.source_in_s,
                source_out_s=out_src,
                montage_in_s=s.montage_in_s,
                montage_out_s=out_m,
                credit=s.credit,
                rotation=s.source_rotation,
                peak_montage_s=s.peak_montage_s if s.peak_montage_s < out_m else None,
                score=s.score,
                action=tracks.get(s.clip_id),
                transition_in=s.transition_in,
                transition_s=s.transition_s,
            )
        )
        if out_m < s.montage_out_s:
            break
    return out
