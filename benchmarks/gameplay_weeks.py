"""Weeks of real engine gameplay with ground truth (`../shared/gameplay_kit`), for fitting and benchmarks.

A kit folder holds the clips, `ground_truth.json` (per-second excitement and events from the game's own
counters) and `clips.json` (the import manifest). This module lists a week's valid clips with their
truth and analyses each clip once (cached beside the kit, keyed by the analysis version).
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from montage_pipeline.media.analysis import ANALYSIS_VERSION, ClipAnalysis, analyze_clips
from montage_pipeline.media.timeline import TimelineRules
from montage_pipeline.media.windows import WindowRules

KIT_TOOLS = Path(__file__).resolve().parents[2] / "shared" / "gameplay_kit"


@dataclass(frozen=True)
class KitClip:
    file: str  # relative to the kit folder, as the manifest names it
    path: Path
    truth: dict[str, Any]  # the clip's ground-truth record

    @property
    def excitement(self) -> np.ndarray:
        return np.asarray(self.truth["excitement"], dtype=np.float64)


@dataclass(frozen=True)
class KitWeek:
    root: Path
    clips: list[KitClip]

    @property
    def name(self) -> str:
        return self.root.name


def load_week(root: Path) -> KitWeek:
    """The week's valid clips (bad inputs that carry a clip record are valid but unusual files)."""
    truth = json.loads((root / "ground_truth.json").read_text())
    clips = [KitClip(c["file"], root / c["file"], c) for c in truth["clips"]]
    clips += [KitClip(b["file"], root / b["file"], b["clip"]) for b in truth["bad_inputs"] if b.get("clip")]
    return KitWeek(root, clips)


def analyses(week: KitWeek, cache: Path, workers: int = 2) -> dict[str, ClipAnalysis]:
    """Each clip's analysis with the pipeline's default options, computed once and cached."""
    folder = cache / f"v{ANALYSIS_VERSION}" / week.name
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, ClipAnalysis] = {}
    todo = []
    for clip in week.clips:
        target = folder / (clip.file.replace("/", "__") + ".npz")
        if target.exists():
            out[clip.file] = ClipAnalysis.load(target)
        else:
            todo.append((clip, target))
    results = analyze_clips([c.path for c, _ in todo], workers=workers)
    for (clip, target), result in zip(todo, results, strict=True):
        if isinstance(result, Exception):
            raise RuntimeError(f"{clip.path}: {result}")
        result.save(target)
        out[clip.file] = result
    return out


def kit_module(name: str, tools: Path = KIT_TOOLS) -> ModuleType:
    """One of the kit's own scripts as a module (`quality`: the judge; `manifest`: the import's games)."""
    if not (tools / f"{name}.py").exists():
        raise SystemExit(f"{tools / name}.py not found: pass --kit-tools (the gameplay_kit folder)")
    sys.path.insert(0, str(tools))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tools))


def quality_module(tools: Path = KIT_TOOLS) -> ModuleType:
    """The kit's own judge (`quality.py`): the figures are the kit's, not ours."""
    return kit_module("quality", tools)


def offline_cut(
    week: KitWeek,
    found: dict[str, ClipAnalysis],
    window_rules: WindowRules | None = None,
    timeline_rules: TimelineRules | None = None,
) -> list[tuple[str, float, float]]:
    """The montage's spans for a week through the same scoring and timeline code `scored_highlights` runs,
    without Dagster or a database (every clip's prior neutral): (file, source in, source out)."""
    from datetime import datetime

    from montage_pipeline.highlights.edl import build_edl, score_candidates
    from montage_pipeline.selection.rows import SelectedClip

    manifest = kit_module("manifest")
    users: dict[str, int] = {}
    clips: list[SelectedClip] = []
    for clip in week.clips:
        a = found[clip.file]
        user = str(clip.truth.get("user", clip.file))
        clips.append(
            SelectedClip(
                clip_id=clip.file,
                job_id=len(clips) + 1,
                user_id=users.setdefault(user, len(users) + 1),
                user_handle=user,
                game=manifest.game_of(clip.truth),  # the game the import gives it
                created_at=datetime.fromisoformat(clip.truth["recorded_at"]),
                render_path=clip.file,
                path=str(clip.path),
                duration_s=a.duration_s,
                fps=a.fps,
                variable_fps=False,
                width=a.width,
                height=a.height,
                rotation=0,
                has_audio=a.has_audio,
                size_bytes=0,
                sha256="",
                visual_hash="",
                job_score=None,
                views=None,
                likes=None,
                rank=1,
                rank_score=1.0,
                selection_reason="",
            )
        )
    scored = score_candidates(clips, found, window_rules or WindowRules())
    _, spans = build_edl(week.name, scored, timeline_rules or TimelineRules())
    return [(s.clip_id, s.source_in_s, s.source_out_s) for s in spans]
