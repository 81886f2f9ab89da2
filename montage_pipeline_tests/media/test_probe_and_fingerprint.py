"""Probing by decoding, and content fingerprints, on real files made here."""

from __future__ import annotations

import itertools
import math
import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from montage_pipeline.media.fingerprint import (
    DEFAULT_THRESHOLD,
    VisualFingerprint,
    are_near_duplicates,
    best_alignment,
    visual_fingerprint,
)
from montage_pipeline.media.probe import ProbeError, probe_clip
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.storage.hashing import file_sha256


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("probe")
    write_clip(d / "a.mp4", plan_clip(8.0, 30, seed=1, width=320, height=180))
    write_clip(d / "a_720.mp4", plan_clip(8.0, 30, seed=1, width=256, height=144), crf=32)
    write_clip(d / "b.mp4", plan_clip(8.0, 30, seed=2, width=320, height=180))
    write_clip(d / "short.mp4", plan_clip(1.5, 30, seed=3, width=320, height=180))
    write_clip(d / "silent.mp4", plan_clip(4.0, 60, seed=4, width=320, height=180, has_audio=False))
    write_clip(
        d / "mono.mp4", plan_clip(4.0, 30, seed=5, width=320, height=180, audio_channels=1, audio_rate=44100)
    )
    return d


def _truncate(src: Path, dst: Path, keep: float) -> Path:
    shutil.copy(src, dst)
    with dst.open("r+b") as fh:
        fh.truncate(int(src.stat().st_size * keep))
    return dst


def _transcode(
    src: Path,
    dst: Path,
    *,
    start_s: float = 0.0,
    faststart: bool = True,
    rotation: int = 0,
    vfr: bool = False,
) -> Path:
    """Re-encode the video of `src` (optionally trimmed, without faststart, rotated or with irregular pts)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options=options) as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=30)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.time_base = Fraction(1, 1000)
        vout.codec_context.time_base = Fraction(1, 1000)
        vout.options = {"g": "60", "crf": "23", "preset": "ultrafast"}
        if rotation:
            vout.set_display_rotation(rotation)
        t_ms = 0
        rng = np.random.default_rng(0)
        for frame in inp.decode(vin):
            if frame.time < start_s:
                continue
            img = frame.to_ndarray(format="yuv420p")
            new = av.VideoFrame.from_ndarray(img, format="yuv420p")
            new.pts = t_ms
            new.time_base = Fraction(1, 1000)
            t_ms += int(rng.choice([17, 33, 50])) if vfr else 33
            out.mux(vout.encode(new))
        out.mux(vout.encode(None))
    return dst


def _stream_copy_trim(src: Path, dst: Path, start_s: float) -> Path:
    """Cut `src` without re-encoding, from its first keyframe at or after `start_s` (as editors do)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        offset = None
        for packet in inp.demux(vin):
            if packet.pts is None or packet.dts is None:
                continue
            assert vin.time_base is not None
            t = float(packet.pts * vin.time_base)
            if offset is None:
                if not (packet.is_keyframe and t >= start_s):
                    continue
                offset = packet.dts
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = vout
            out.mux(packet)
    return dst


def test_good_clips_give_their_facts(clips: Path) -> None:
    p = probe_clip(clips / "a.mp4")
    assert (p.width, p.height, p.rotation) == (320, 180, 0)
    assert p.fps == pytest.approx(30.0) and not p.variable_fps
    assert p.duration_s == pytest.approx(8.0, abs=0.05)
    assert p.has_audio and (p.audio_rate, p.audio_channels) == (48000, 2)
    assert p.video_codec == "h264" and p.has_b_frames
    assert p.size_bytes == (clips / "a.mp4").stat().st_size
    silent = probe_clip(clips / "silent.mp4")
    assert not silent.has_audio and silent.audio_rate is None and silent.fps == pytest.approx(60.0)
    mono = probe_clip(clips / "mono.mp4")
    assert (mono.audio_rate, mono.audio_channels) == (44100, 1)


def test_rotation_and_variable_frame_rate(clips: Path, tmp_path: Path) -> None:
    rotated = probe_clip(_transcode(clips / "a.mp4", tmp_path / "rot.mp4", rotation=90))
    assert rotated.rotation in (90, 270)  # the sign convention of the display matrix differs by tool
    assert rotated.display_size == (180, 320)
    vfr = probe_clip(_transcode(clips / "a.mp4", tmp_path / "vfr.mp4", vfr=True))
    assert vfr.variable_fps
    cfr = probe_clip(_transcode(clips / "a.mp4", tmp_path / "cfr.mp4"))
    assert not cfr.variable_fps


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing", "missing"),
        ("empty", "empty"),
        ("png", "not_a_video"),
        ("random", "not_a_video"),
        ("truncated_faststart", "truncated"),
        ("truncated_moov_at_end", "truncated"),
        ("short", "too_short"),
    ],
)
def test_bad_files_are_refused_with_their_reason(clips: Path, tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / f"{name}.mp4"
    if name == "empty":
        path.write_bytes(b"")
    elif name == "png":
        Image.new("RGB", (320, 180), (10, 200, 30)).save(tmp_path / "x.png")
        shutil.copy(tmp_path / "x.png", path)
    elif name == "random":
        path.write_bytes(os.urandom(200_000))
    elif name == "truncated_faststart":
        _truncate(clips / "a.mp4", path, 0.55)
    elif name == "truncated_moov_at_end":
        _truncate(_transcode(clips / "a.mp4", tmp_path / "slow.mp4", faststart=False), path, 0.7)
    elif name == "short":
        path = clips / "short.mp4"
    with pytest.raises(ProbeError) as caught:
        probe_clip(path)
    assert caught.value.reason == reason, caught.value.detail


def test_identical_and_different_files_by_sha256(clips: Path, tmp_path: Path) -> None:
    copy = shutil.copy(clips / "a.mp4", tmp_path / "copy.mp4")
    assert file_sha256(Path(copy)) == file_sha256(clips / "a.mp4")
    assert file_sha256(clips / "a.mp4") != file_sha256(clips / "b.mp4")


def test_reencoded_and_trimmed_copies_are_near_duplicates(clips: Path, tmp_path: Path) -> None:
    a = visual_fingerprint(clips / "a.mp4")
    assert len(a.hashes) >= 4
    reencoded = visual_fingerprint(clips / "a_720.mp4")
    trimmed = visual_fingerprint(_stream_copy_trim(clips / "a.mp4", tmp_path / "trim.mp4", start_s=2.5))
    other = visual_fingerprint(clips / "b.mp4")
    assert best_alignment(a, reencoded)[0] < DEFAULT_THRESHOLD / 2
    assert are_near_duplicates(a, trimmed)
    assert not are_near_duplicates(a, other)
    assert best_alignment(a, other)[0] > DEFAULT_THRESHOLD * 1.5
    stored = VisualFingerprint.from_hex(a.to_hex())  # the DB keeps the keyframe hashes
    assert (stored.times_s, stored.hashes) == (a.times_s, a.hashes)


def test_generated_clips_have_their_keyframes_on_the_planned_cuts(tmp_path: Path) -> None:
    """The demo's uploads place keyframes as a scene-cut encoder does: on each planned cut, else every
    two seconds (the GOP), and not on a flash, which is one scene brightening, not a new scene."""
    plan = plan_clip(12.0, 30, seed=1, width=320, height=180)
    assert plan.cut_times_s and any(e.kind == "flash" for e in plan.events or ())
    path = tmp_path / "clip.mp4"
    write_clip(path, plan)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.codec_context.skip_frame = "NONKEY"
        keys = [round(float(f.time) * 30) for f in container.decode(video)]
    cuts = [math.ceil(round(c * 30, 6)) for c in plan.cut_times_s]  # the first frame at or after each cut
    assert set(cuts) <= set(keys)
    for before, key in itertools.pairwise(keys):
        assert key - before == 60 or key in cuts, f"keyframe at frame {key}: neither a cut nor the GOP's"
