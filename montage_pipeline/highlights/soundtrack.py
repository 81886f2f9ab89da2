"""The week's soundtrack from its cut: music on the EDL's beat grid, the spans' game audio, ducking, then
one master, encoded to AAC once per distinct cut length, muxed into each render and checked.

Plain Python over the EDL rows and file paths (`build_mix`, `encode_soundtracks`, `mux_and_check`; the
`soundtrack` and `mixed_audio` assets call them through `prepared_soundtrack` and write metadata), so
the whole soundtrack can be built and tested without Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.audio_specs import AudioMeasurements, AudioSpecReport, audio_failures
from montage_pipeline.media.heap import give_back_freed_memory
from montage_pipeline.media.mix import RATE, AudioSpan, combine, duck_gain, game_track
from montage_pipeline.media.music import MusicPlan, generate, plan_for_week
from montage_pipeline.media.music_library import TrackBeats, fit_track, week_track
from montage_pipeline.media.mux import (
    EncodedSoundtrack,
    encode_cut,
    fit_to,
    master_and_encode,
    mux,
    video_duration,
)
from montage_pipeline.media.specs import inspect_video, spec_failures


@dataclass(frozen=True)
class Mix:
    """The mixed soundtrack (float samples at `RATE`) for a cut of `duration_s`, before mastering."""

    samples: np.ndarray
    duration_s: float
    plan: MusicPlan
    library_track: TrackBeats | None

    @property
    def music(self) -> str:
        if self.library_track is not None:
            return f"{self.library_track.path.name} ({self.library_track.tempo_bpm:g} BPM)"
        return f"generated (seed {self.plan.seed}, {self.plan.tempo_bpm:g} BPM)"


def rising_energy(spans: list[EditSpan]) -> list[float]:
    """Per span (in montage order) how intense the music under it is: its score (0.3..0.9) blended with
    its place, so the energy rises through the montage."""
    scores = np.array([s.score for s in spans])
    energy = (scores - scores.min()) / (np.ptp(scores) or 1.0) * 0.6 + 0.3
    order = np.argsort(np.argsort([s.order for s in spans]))
    last = max(1, len(spans) - 1)
    return [0.5 * float(energy[i]) + 0.5 * (order[i] / last) for i in range(len(spans))]


def build_mix(
    spans: list[EditSpan],
    duration_s: float,
    week: str,
    music_library: Path | None,
    duck_db: float,
    music_gain_db: float,
    theme_slug: str | None = None,
) -> Mix:
    """Music (the library's track for the week and its theme, else generated on the beat grid) ducked
    under the game."""
    spans = sorted(spans, key=lambda s: s.order)
    plan = plan_for_week(
        week,
        spans[0].tempo_bpm,
        duration_s,
        spans[0].intro_s,
        [s.montage_in_s for s in spans[1:]],
        rising_energy(spans),
    )
    library_track = week_track(music_library, week, theme_slug)
    # A library track starts at its first beat and shares the edit's tempo (scored_highlights used it).
    music = fit_track(library_track, duration_s) if library_track is not None else generate(plan)
    game = game_track(
        [
            AudioSpan(
                Path(s.source_path),
                s.source_in_s,
                s.source_out_s,
                s.montage_in_s,
                s.montage_out_s,
                s.source_has_audio,
                s.transition_s if s.transition_in == "dissolve" else 0.0,
            )
            for s in spans
        ],
        duration_s,
    )
    music *= duck_gain(game, duck_db)  # in place: the music is this mix's own
    return Mix(combine(music, game, music_gain_db, out=music), duration_s, plan, library_track)


@dataclass
class FinishedCuts:
    """Each render with the soundtrack muxed in, what the checks measured, and what failed them."""

    finals: dict[str, Path] = field(default_factory=dict)
    measured: dict[str, AudioSpecReport] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # The finals' audio by its packets' digest, for the export gate; `.reused` counts the finals checked
    # from their soundtrack's own measurement instead of being decoded again.
    audio: AudioMeasurements = field(default_factory=AudioMeasurements)
    soundtrack: EncodedSoundtrack | None = None  # the full-length one (the landscape cut's)
    master_rounds: int = 0


def fade_for(length_s: float, mix_duration_s: float) -> float:
    """A cut shorter than the mix (the 180 s portrait, the copy without an end card) fades out over its
    last second; the cut as long as the mix ends as the music does."""
    return 0.0 if abs(length_s - mix_duration_s) < 1e-3 else 1.0


def soundtrack_key(length_s: float, mix_duration_s: float) -> tuple[int, float]:
    """What makes two cuts share one encoded soundtrack: the same length in samples and the same fade."""
    return round(length_s * RATE), fade_for(length_s, mix_duration_s)


def encode_soundtracks(
    mix: Mix, lengths: Sequence[float], workdir: Path, bitrate: int
) -> dict[tuple[int, float], EncodedSoundtrack]:
    """The mix mastered once and encoded once per distinct cut (length, fade), keyed by `soundtrack_key`.

    Each shorter cut is cut from that one master; only a cut whose encoded true peak comes out over the
    ceiling is mastered on its own. Needs the cut lengths, not the videos: `soundtrack` runs this while
    the render runs, `mixed_audio` only when the render's lengths are not the ones it planned for.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    full = master_and_encode(
        fit_to(mix.samples, mix.duration_s), workdir / "soundtrack-0.m4a", bitrate=bitrate
    )
    encoded = {soundtrack_key(mix.duration_s, mix.duration_s): full}
    for length in lengths:
        key = soundtrack_key(length, mix.duration_s)
        if key not in encoded:
            path = workdir / f"soundtrack-{len(encoded)}.m4a"
            encoded[key] = encode_cut(full, length, key[1], path, bitrate=bitrate) or master_and_encode(
                fit_to(mix.samples, length, fade_out_s=key[1]), path, bitrate=bitrate
            )
    # Every length is encoded: the mastered samples (a copy of the track each) are not needed any more.
    encoded = {key: replace(track, mastered=None) for key, track in encoded.items()}
    give_back_freed_memory()
    return encoded


def mux_and_check(
    encoded: dict[tuple[int, float], EncodedSoundtrack],
    mix_duration_s: float,
    renders: dict[str, Path],
    workdir: Path,
) -> FinishedCuts:
    """Mux each render (name → video) with its encoded soundtrack (packets copied) and check sound and
    picture again. Every render's length must have its soundtrack in `encoded`.

    A final whose audio packets are the soundtrack's, byte for byte, decodes to the samples measured when
    that soundtrack was encoded: its audio check reads that measurement (`AudioMeasurements`); any other
    audio is decoded and measured."""
    done = FinishedCuts()
    for track in encoded.values():
        if track.measured is not None:
            done.audio.add(track.measured)
    for name, video in renders.items():
        track = encoded[soundtrack_key(video_duration(video), mix_duration_s)]
        final = workdir / name
        mux(video, track.path, final)
        spec = done.measured[name] = done.audio.inspect(final)
        done.failures += [f"{name}: {f}" for f in audio_failures(spec)]
        # Muxing rewrites the container: the video must still be what the render check passed.
        video_spec = inspect_video(final, stills=False)
        done.failures += [
            f"{name}: {f}"
            for f in spec_failures(video_spec, width=video_spec.width, height=video_spec.height)
        ]
        done.finals[name] = final
    done.soundtrack = encoded[soundtrack_key(mix_duration_s, mix_duration_s)]
    done.master_rounds = sum(e.rounds for e in encoded.values())
    return done


# The other cuts' final files, by cut (their renders' `video.mp4` / `video_unbranded.mp4` muxed).
CUT_FINALS = {"short": "final_short_portrait.mp4", "long": "final_long_landscape.mp4"}
# Beside the finals in `mixed_audio`'s bundle: their audio's measurements by packet digest
# (`AudioMeasurements.write`), which the export gate reads instead of decoding the same audio again.
AUDIO_MEASUREMENTS = "audio_measurements.json"


def cut_renders(cut: str, render_files: dict[str, Path]) -> dict[str, Path]:
    """The short's or the long cut's finals by name → the render each is made from (full length first)."""
    final = CUT_FINALS[cut]
    renders = {final: render_files["video.mp4"]}
    if "video_unbranded.mp4" in render_files:
        renders[final.replace(".mp4", "_unbranded.mp4")] = render_files["video_unbranded.mp4"]
    return renders
