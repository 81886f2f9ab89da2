"""The soundtracks made without waiting for the render (`soundtrack`), kept in the media store for
`mixed_audio`.

The mix needs the cut's EDL and the renders' lengths, never their pictures, and those lengths follow
from the EDL (`render_plan.planned_lengths`). So each cut's music, mix, master and AAC encodes are made
apart from the render (on another worker beside it; locally before or after it, see `executors.py`), and
after it only the packets are copied into each render (`mux_and_check`). What is
kept per cut: the encoded soundtracks (one per distinct length and fade) and, in `soundtracks.json`,
what they were made from. A prepared cut serves only the EDL it was made from and the lengths it was
encoded for; anything else (an EDL rerun since, a render configured to another rate or an end card)
says why, and `mixed_audio` makes that cut's soundtrack again after the render, as before.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from montage_pipeline.highlights.cuts import main_fingerprint
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.highlights.soundtrack import (
    FinishedCuts,
    Mix,
    build_mix,
    encode_soundtracks,
    mux_and_check,
    soundtrack_key,
)
from montage_pipeline.media.audio_specs import MeasuredAudio, report_fields, report_from_fields
from montage_pipeline.media.mix import MixReport
from montage_pipeline.media.mux import EncodedSoundtrack, video_duration

# (the cut's spans, its full-length render's seconds) → its mix: the week, music library, levels and
# theme are bound by the caller.
MixMaker = Callable[[Sequence[EditSpan], float], Mix]

MANIFEST = "soundtracks.json"


@dataclass(frozen=True)
class MixSettings:
    """How the music sits under the game and how the AAC is encoded: what a remake must use too."""

    duck_db: float = 9.0  # how far the music drops under loud game action
    music_gain_db: float = -4.0  # music against the loudness-matched game audio
    bitrate: int = 320_000

    @property
    def levels(self) -> tuple[float, float]:
        return self.duck_db, self.music_gain_db


@dataclass(frozen=True)
class PreparedCut:
    """One cut's soundtracks, encoded before its render was made."""

    cut: str  # "main", "short" or "long"
    edl: str  # the fingerprint of the spans it was mixed from
    duration_s: float  # the mix's length: the cut's full-length render
    music: str
    tempo_bpm: float
    encoded: dict[tuple[int, float], EncodedSoundtrack]

    def unusable(self, spans: Sequence[EditSpan], lengths: Sequence[float]) -> str | None:
        """Why these soundtracks cannot go into renders of these lengths made from these spans; None
        when they can."""
        if self.edl != main_fingerprint(spans):
            return f"the {self.cut} EDL changed since the soundtrack was made"
        missing = [f"{n:.3f}s" for n in lengths if soundtrack_key(n, self.duration_s) not in self.encoded]
        if missing:
            return f"no soundtrack prepared for a render of {', '.join(missing)}"
        return None


PREPARED = "prepared alongside the render"


def mix_maker(week: str, music_library: Path | None, mix: MixSettings, theme_slug: str | None) -> MixMaker:
    """The week's mix for a cut's spans and length, with the music library, levels and theme bound."""

    def make(spans: Sequence[EditSpan], duration_s: float) -> Mix:
        return build_mix(list(spans), duration_s, week, music_library, *mix.levels, theme_slug)

    return make


def prepare_cut(
    cut: str,
    spans: Sequence[EditSpan],
    lengths: Sequence[float],
    make_mix: MixMaker,
    workdir: Path,
    bitrate: int,
) -> PreparedCut:
    """The cut's mix for its full-length render (`lengths[0]`), mastered and encoded for every length."""
    mix = make_mix(spans, lengths[0])
    encoded = encode_soundtracks(mix, lengths, workdir, bitrate)
    return PreparedCut(cut, main_fingerprint(spans), mix.duration_s, mix.music, mix.plan.tempo_bpm, encoded)


# Cuts made at once: the mix, master and AAC encoder each run on one core, and in-process the soundtrack
# step has the machine to itself. Two cuts at once hold both working sets (the bench week's long and
# main cut: ~490 MiB over the process, against ~320 one cut at a time).
CONCURRENT_CUTS = 2


def prepare_cuts(
    cut_spans: Mapping[str, Sequence[EditSpan]],
    lengths: Mapping[str, Sequence[float]],
    make_mix: MixMaker,
    workdir: Path,
    bitrate: int,
) -> list[PreparedCut]:
    """`prepare_cut` for every cut in `lengths` (in its order), `CONCURRENT_CUTS` at a time, the longest
    first so that the short one fills in beside it. NumPy, SciPy and FFmpeg's encoder release the GIL;
    each cut has its own mix, meter and encoder, so the result is the same as one after another."""
    order = sorted(lengths, key=lambda cut: -lengths[cut][0])
    with ThreadPoolExecutor(max_workers=CONCURRENT_CUTS, thread_name_prefix="soundtrack") as pool:
        futures = {
            cut: pool.submit(prepare_cut, cut, cut_spans[cut], lengths[cut], make_mix, workdir / cut, bitrate)
            for cut in order
        }
        return [futures[cut].result() for cut in lengths]


@dataclass(frozen=True)
class CutSound:
    """One cut's soundtracks muxed into its renders, and how they were made."""

    done: FinishedCuts
    music: str
    tempo_bpm: float
    made: str  # PREPARED, or "made after the render: <why the prepared one could not serve>"


def finish_cut(
    cut: str,
    spans: Sequence[EditSpan],
    renders: dict[str, Path],
    prepared: PreparedCut | None,
    make_mix: MixMaker,
    workdir: Path,
    bitrate: int,
) -> CutSound:
    """Each render (name → video, the full-length one first) with its soundtrack muxed in: the prepared
    one when it serves these spans and lengths, else made here from the renders' lengths, as it would
    have been beside the render (same mix, master and encodes, so the same packets)."""
    workdir.mkdir(parents=True, exist_ok=True)
    lengths = [video_duration(video) for video in renders.values()]
    why = prepared.unusable(spans, lengths) if prepared is not None else "no soundtrack was prepared"
    made = PREPARED
    if prepared is None or why is not None:
        prepared, made = (
            prepare_cut(cut, spans, lengths, make_mix, workdir, bitrate),
            f"made after the render: {why}",
        )
    done = mux_and_check(prepared.encoded, prepared.duration_s, renders, workdir)
    return CutSound(done, prepared.music, prepared.tempo_bpm, made)


def write_manifest(cuts: Sequence[PreparedCut], settings: MixSettings, folder: Path) -> Path:
    """`soundtracks.json` in `folder`: each cut's soundtracks by their names in the bundle (`bundle_name`)
    and what they were made from."""
    document = {
        "settings": {
            "duck_db": settings.duck_db,
            "music_gain_db": settings.music_gain_db,
            "bitrate": settings.bitrate,
        },
        "cuts": {
            c.cut: {
                "edl": c.edl,
                "duration_s": c.duration_s,
                "music": c.music,
                "tempo_bpm": c.tempo_bpm,
                "soundtracks": [
                    {
                        "file": bundle_name(c.cut, track.path),
                        "samples": key[0],
                        "fade_s": key[1],
                        "report": dataclasses.asdict(track.report),
                        "encoded_peak_dbtp": track.encoded_peak_dbtp,
                        "rounds": track.rounds,
                        **(
                            {
                                "digest": track.measured.digest,
                                "measured": report_fields(track.measured.report),
                            }
                            if track.measured is not None
                            else {}
                        ),
                    }
                    for key, track in c.encoded.items()
                ],
            }
            for c in cuts
        },
    }
    path = folder / MANIFEST
    path.write_text(json.dumps(document, indent=1, sort_keys=True))
    return path


def bundle_name(cut: str, path: Path) -> str:
    """The soundtrack's name in the `soundtrack` bundle: the cut's name before the file's."""
    return f"{cut}-{path.name}"


def read_manifest(files: Mapping[str, Path]) -> tuple[MixSettings, dict[str, PreparedCut]]:
    """The settings and cuts `write_manifest` wrote, their soundtracks at the paths in `files` (name →
    local path, as the media store handed them over)."""
    document = json.loads(files[MANIFEST].read_text())
    settings = MixSettings(**document["settings"])
    cuts = {
        cut: PreparedCut(
            cut=cut,
            edl=entry["edl"],
            duration_s=entry["duration_s"],
            music=entry["music"],
            tempo_bpm=entry["tempo_bpm"],
            encoded={
                (track["samples"], track["fade_s"]): EncodedSoundtrack(
                    files[track["file"]],
                    MixReport(**track["report"]),
                    track["encoded_peak_dbtp"],
                    track["rounds"],
                    None,
                    _measured(track),
                )
                for track in entry["soundtracks"]
            },
        )
        for cut, entry in document["cuts"].items()
    }
    return settings, cuts


def _measured(track: Mapping[str, Any]) -> MeasuredAudio | None:
    """A manifest track's own measurement; None in a manifest written before soundtracks carried one."""
    if "digest" not in track:
        return None
    return MeasuredAudio(track["digest"], report_from_fields(track["measured"]), track["encoded_peak_dbtp"])
