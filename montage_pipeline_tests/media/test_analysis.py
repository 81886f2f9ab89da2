"""The one-pass analysis finds what synth planted, on real H.264/AAC clips."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from montage_pipeline.highlights.edl import track_input
from montage_pipeline.media.analysis import (
    ClipAnalysis,
    analyze_clip,
    analyze_clips,
    area_resize,
    largest_first,
)
from montage_pipeline.media.excitement import WeekScale, bin_features, excitement_curve
from montage_pipeline.media.synth import PlantedEvent, PlantedTimeline, plan_clip, write_clip
from montage_pipeline.media.windows import best_window

SIZE = {"width": 640, "height": 360}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, PlantedTimeline]]:
    d = tmp_path_factory.mktemp("analysis")
    out = {}
    specs = {
        "busy30": plan_clip(12.0, 30, seed=21, **SIZE),
        "busy60": plan_clip(10.0, 60, seed=22, **SIZE),
        "calm_burst": plan_clip(
            16.0,
            30,
            seed=23,
            calm=True,
            events=(
                PlantedEvent("fast_motion", 10.0, 12.5),
                PlantedEvent("flash", 11.0, 11.2),
                PlantedEvent("loud", 11.0, 11.25),
            ),
            **SIZE,
        ),
        "silent": plan_clip(6.0, 30, seed=24, has_audio=False, **SIZE),
        "mono": plan_clip(6.0, 30, seed=25, audio_channels=1, audio_rate=44100, **SIZE),
    }
    for name, plan in specs.items():
        path = d / f"{name}.mp4"
        out[name] = (path, write_clip(path, plan))
    return out


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720), (854, 480), (640, 360), (960, 540)])
def test_the_shrunk_plane_is_one_area_average_within_a_level(size: tuple[int, int]) -> None:
    """The halving fast path must not change what the analysis sees: within one level of one pass."""
    rng = np.random.default_rng(size[0])
    plane = cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), (0, 0), 2)
    for w, h in ((320, 180), (160, 90)):
        one_pass = cv2.resize(plane, (w, h), interpolation=cv2.INTER_AREA).astype(int)
        shrunk = area_resize(plane, w, h)
        assert shrunk.shape == (h, w)
        assert np.abs(shrunk.astype(int) - one_pass).max() <= 1


def _frame_index(times: np.ndarray, t: float) -> int:
    return int(np.argmin(np.abs(times - t)))


@pytest.mark.parametrize("skip_nonref", [True, False], ids=["reference-frames", "all-frames"])
@pytest.mark.parametrize("name", ["busy30", "busy60"])
def test_cuts_flashes_motion_and_sound_are_found(planted: dict, name: str, skip_nonref: bool) -> None:
    path, tl = planted[name]
    a = analyze_clip(path, skip_nonref=skip_nonref)
    frame = 1.0 / tl.fps
    found = [s.start_s for s in a.scenes[1:]]
    for cut in tl.cut_times_s:
        assert min(abs(f - cut) for f in found) <= frame + 1e-6, (cut, found)
    assert len(found) <= len(tl.cut_times_s) + 1  # at most one spurious cut
    assert all(s.cut_score > 0 for s in a.scenes[1:])
    t = a.tracks
    for e in tl.events:
        if e.kind == "flash":
            window = (t.frame_times_s >= e.start_s - 0.5) & (t.frame_times_s <= e.end_s + 0.5)
            peak = t.frame_times_s[window][np.argmax(t.flash[window])]
            assert abs(peak - e.start_s) <= 2 * frame + 1e-6
        if e.kind == "loud":
            steps = np.arange(len(t.loudness_db)) * t.audio_step_s
            window = (steps >= e.start_s - 0.5) & (steps <= e.end_s + 0.5)
            assert abs(steps[window][np.argmax(t.loudness_db[window])] - e.start_s) <= 0.1
            assert abs(steps[window][np.argmax(t.onset[window])] - e.start_s) <= 0.1
            assert t.loudness_db[window].max() >= np.median(t.loudness_db) + 20
    fast = np.zeros(len(t.frame_times_s), bool)
    for e in tl.events:
        if e.kind == "fast_motion":
            fast |= (t.frame_times_s >= e.start_s) & (t.frame_times_s < e.end_s)
    calm = np.zeros(len(t.frame_times_s), bool)
    for a0, b0 in tl.calm_spans_s:
        calm |= (t.frame_times_s >= a0 + 0.5) & (t.frame_times_s < b0 - 0.5)
    for cut in tl.cut_times_s:  # the cut frame itself is not calm motion
        calm[_frame_index(t.frame_times_s, cut)] = False
    assert fast.any() and calm.any()
    assert np.median(t.motion[fast]) >= 3 * np.median(t.motion[calm])
    assert a.duration_s == pytest.approx(tl.duration_s, abs=frame)
    total = round(tl.duration_s * tl.fps)
    assert a.frames_decoded == total if not skip_nonref else 0.5 * total <= a.frames_decoded < total


def test_a_calm_clip_is_one_scene_and_its_burst_is_the_window(planted: dict) -> None:
    path, _ = planted["calm_burst"]
    a = analyze_clip(path)
    assert len(a.scenes) == 1 and a.scenes[0].start_s == 0.0
    assert a.scenes[0].end_s == pytest.approx(16.0, abs=0.04)
    binned = bin_features(track_input(a))
    window = best_window(excitement_curve(binned, WeekScale.of([binned])), a.duration_s, ())
    assert window.start_s <= 10.0 and window.end_s >= 12.0  # cut around the burst, lead-in included
    assert 10.0 <= window.peak_s <= 12.5


def test_clips_without_audio_and_mono_44k(planted: dict) -> None:
    silent = analyze_clip(planted["silent"][0])
    assert not silent.has_audio
    assert silent.tracks.loudness_db.size == 0 or silent.tracks.loudness_db.max() <= -99
    mono = analyze_clip(planted["mono"][0])
    assert mono.has_audio
    assert len(mono.tracks.loudness_db) == pytest.approx(6.0 / mono.tracks.audio_step_s, abs=2)
    assert np.median(mono.tracks.loudness_db) > -80  # the ambient bed, not silence


def _moving_square(path: Path, fps: int = 30, seconds: float = 3.0, vfr: bool = False) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        n = int(seconds * fps)
        t_ms = 0
        for i in range(n):
            img = np.full((180, 320, 3), 40, np.uint8)
            x = int(20 + (260 * i) / n)
            img[70:110, x : x + 40] = 230
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = t_ms
            t_ms += (20 if i % 2 else 47) if vfr else 1000 // fps
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_action_x_follows_the_moving_object(tmp_path: Path) -> None:
    _moving_square(tmp_path / "square.mp4")
    t = analyze_clip(tmp_path / "square.mp4").tracks
    moving = t.motion > 0.001
    r = np.corrcoef(t.frame_times_s[moving], t.action_x[moving])[0, 1]
    assert r > 0.9
    assert t.action_x[moving][0] < 0.3 and t.action_x[moving][-1] > 0.7


def test_vfr_timestamps_come_from_pts(tmp_path: Path) -> None:
    _moving_square(tmp_path / "vfr.mp4", vfr=True)
    t = analyze_clip(tmp_path / "vfr.mp4", skip_nonref=False).tracks
    deltas = np.round(np.diff(t.frame_times_s), 3)
    assert set(deltas) == {0.02, 0.047}


def test_round_trip_and_a_corrupt_clip_in_a_batch(planted: dict, tmp_path: Path) -> None:
    path = planted["busy30"][0]
    a = analyze_clip(path)
    a.save(tmp_path / "a.npz")
    b = ClipAnalysis.load(tmp_path / "a.npz")
    assert b.scenes == a.scenes and b.duration_s == a.duration_s
    assert np.array_equal(b.tracks.motion, a.tracks.motion) and np.array_equal(b.tracks.onset, a.tracks.onset)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(5000))
    shutil.copy(path, tmp_path / "good.mp4")
    results = analyze_clips([tmp_path / "good.mp4", broken], workers=2)
    assert isinstance(results[0], ClipAnalysis) and results[0].scenes == a.scenes
    assert isinstance(results[1], Exception)


def test_the_pool_takes_the_largest_clip_first_and_answers_in_the_callers_order(
    planted: dict, tmp_path: Path
) -> None:
    small, large = tmp_path / "small.mp4", tmp_path / "large.mp4"
    small.write_bytes(b"\x00" * 10)
    shutil.copy(planted["busy30"][0], large)
    missing = tmp_path / "missing.mp4"
    assert largest_first([small, missing, large]) == [2, 0, 1]
    results = analyze_clips([small, missing, large], workers=2)
    assert [type(r) is ClipAnalysis for r in results] == [False, False, True]
    assert isinstance(results[1], FileNotFoundError)


def test_the_analysis_workers_do_not_run_the_launching_script_again(planted: dict, tmp_path: Path) -> None:
    """A run launched as a script (`dagster asset materialize`, `make demo`) used to run that script
    again in each analysis worker, all of Dagster with it; the script here notes every run of itself."""
    runs = tmp_path / "runs.txt"
    script = tmp_path / "launch.py"
    clip = planted["busy30"][0]
    script.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            with open({str(runs)!r}, "a") as f:
                f.write("ran\\n")

            from montage_pipeline.media.analysis import ClipAnalysis, analyze_clips

            if __name__ == "__main__":
                results = analyze_clips([Path({str(clip)!r})] * 2, workers=2)
                assert all(isinstance(r, ClipAnalysis) for r in results), results
            """
        )
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=300)
    assert runs.read_text().splitlines() == ["ran"]


def test_motion_reads_the_same_at_30_and_60_fps(tmp_path: Path) -> None:
    """The same planted clip at 30 and 60 fps: motion is the change per 1/30 s, so a 60 fps upload is not
    read as half as lively (a per-frame difference halves at 60 fps)."""
    motion = {}
    for fps in (30, 60):
        path = tmp_path / f"clip{fps}.mp4"
        write_clip(path, plan_clip(8.0, fps, seed=31, **SIZE))
        motion[fps] = float(bin_features(track_input(analyze_clip(path))).raw["motion"].mean())
    assert 0.75 <= motion[60] / motion[30] <= 1.4
