"""Cut the small real-gameplay fixtures of the quality tests out of a gameplay-kit week.

    .venv/bin/python montage_pipeline_tests/gameplay/make_fixtures.py KIT_WEEK_DIR

The kit (`../shared/gameplay_kit/make_week.py --seed 101`) plays the ViZDoom engine and records ground
truth from the game's counters. Each fixture is a span of one kit clip, scaled to 320×180 (the size
the analysis works at) and re-encoded small (H.264 CRF 30, AAC 64 kb/s), with the ground truth of the
same seconds in `truth.json`. The committed files were made from seed 101 with this script.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import av

HERE = Path(__file__).resolve().parent
# name -> (kit file, start s, end s, what it is)
FIXTURES = {
    "defend_action.mp4": ("clip_016.mp4", 8.0, 22.0, "defend_the_center: a kill every second or two"),
    "deathmatch_combat.mp4": ("clip_007.mp4", 17.0, 31.0, "deathmatch: hits, kills and damage"),
    "explore_walking.mp4": ("clip_006.mp4", 0.0, 14.0, "freedoom2 with no monsters: walking only"),
    "maze_walking.mp4": ("clip_013.mp4", 5.0, 19.0, "my_way_home: walking through a maze"),
    "no_audio_action.mp4": ("bad/no_audio.mp4", 0.0, 10.7, "defend_the_center with no audio track"),
}
SIZE = (320, 180)


def cut(source: Path, target: Path, start: float, end: float) -> None:
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        vin = src.streams.video[0]
        rate = vin.average_rate or Fraction(30)
        vout = dst.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        vout.options = {"crf": "30", "preset": "medium"}
        ain = src.streams.audio[0] if src.streams.audio else None
        aout = dst.add_stream("aac", rate=44100, layout="stereo") if ain else None
        if aout is not None:
            aout.bit_rate = 64_000
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44100)
        frame_index = 0
        for frame in src.decode(*(s for s in (vin, ain) if s is not None)):
            if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                continue
            if frame.time is None or not start <= frame.time < end:
                continue
            if isinstance(frame, av.VideoFrame):
                small = frame.reformat(width=SIZE[0], height=SIZE[1], format="yuv420p")
                small.pts, small.time_base = frame_index, 1 / rate
                frame_index += 1
                dst.mux(vout.encode(small))
            elif aout is not None:
                frame.pts = None
                for out in resampler.resample(frame):
                    dst.mux(aout.encode(out))
        dst.mux(vout.encode())
        if aout is not None:
            dst.mux(aout.encode())


def truth_slice(clip: dict[str, object], start: float, end: float) -> dict[str, object]:
    excitement = clip["excitement"]
    assert isinstance(excitement, list)
    events = clip["events"]
    assert isinstance(events, list)
    return {
        "excitement": excitement[int(start) : int(end)],
        "events": [{**e, "t": round(e["t"] - start, 3)} for e in events if start <= e["t"] < end],
        "has_audio": clip["has_audio"],
        "scenario": clip["scenes"][0]["scenario"],  # type: ignore[index]
    }


def main(kit: Path) -> None:
    gt = json.loads((kit / "ground_truth.json").read_text())
    clips = {c["file"]: c for c in gt["clips"]}
    clips.update({b["file"]: b["clip"] for b in gt["bad_inputs"] if b.get("clip")})
    truth: dict[str, dict[str, object]] = {}
    for name, (file, start, end, what) in FIXTURES.items():
        cut(kit / file, HERE / "clips" / name, start, end)
        truth[name] = {"source": f"seed {gt['args']['seed']} {file} {start}-{end}s", "what": what}
        truth[name].update(truth_slice(clips[file], start, end))
    (HERE / "clips" / "truth.json").write_text(json.dumps(truth, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
