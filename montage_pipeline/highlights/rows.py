"""The data contracts of the analysis stage: scene rows and the edit decision list (EDL)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SceneSegment:
    clip_id: str
    sha256: str
    scene_index: int
    start_s: float
    end_s: float
    cut_score: float  # the detector's score at the cut that starts this scene (0 for the first)
    analysis_key: str  # where the clip's full analysis (feature tracks) is cached in the media store


@dataclass(frozen=True, slots=True)
class EditSpan:
    """One span of the montage: which seconds of which clip go where, and why they were chosen."""

    order: int
    clip_id: str
    job_id: int
    user_id: int
    user_handle: str
    game: str
    source_path: str
    source_sha256: str
    source_in_s: float
    source_out_s: float
    montage_in_s: float
    montage_out_s: float
    peak_source_s: float
    peak_montage_s: float
    peak_on_downbeat: bool
    in_beat: int
    out_beat: int
    tempo_bpm: float
    beat_s: float
    intro_s: float  # the title card before the first span
    score: float
    score_breakdown: dict[str, float]
    credit: str  # "@handle · game"
    transition_in: str  # "cut" or "dissolve"
    transition_s: float
    source_fps: float
    source_width: int
    source_height: int
    source_rotation: int
    source_has_audio: bool
