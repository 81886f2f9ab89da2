"""Clip verification is bounded: frame size, duration, file size, bytes per second, frame density, HDR.

The limits are configurable, so the clips here are tiny real H.264 files made with PyAV and the limits are
set just under or over them; the defaults are checked to admit the same files.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.media.probe import ClipLimits, ProbeError, probe_clip
from montage_pipeline.selection.rows import Rejection
from montage_pipeline.selection.verify import VerifiedClip, verify_job, verify_jobs
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import eligible_job

PQ, HLG = 16, 18  # FFmpeg's AVCOL_TRC_SMPTE2084 and AVCOL_TRC_ARIB_STD_B67
BT2020 = 9  # primaries and matrix


def _encode(
    path: Path, pts_ms: list[int], *, size: tuple[int, int] = (64, 48), pix_fmt: str = "yuv420p", trc: int = 0
) -> Path:
    """Frames of noise at the given times (ms), H.264 in MP4; `trc` tags the colour transfer."""
    w, h = size
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        video.time_base = Fraction(1, 1000)
        video.codec_context.time_base = Fraction(1, 1000)
        if trc:
            video.codec_context.color_trc = trc
            video.codec_context.color_primaries = BT2020
            video.codec_context.colorspace = BT2020
        video.options = {"preset": "ultrafast", "g": "30"}
        rng = np.random.default_rng(0)
        for t in pts_ms:
            rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


FOUR_SECONDS = [i * 33 for i in range(120)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("limits")
    _encode(d / "ok.mp4", FOUR_SECONDS)
    _encode(d / "sparse.mp4", [i * 8000 for i in range(8)])  # 8 frames over 56 s
    _encode(d / "ten_hours.mp4", [round(i * 36_000_000 / 7) for i in range(8)])  # 8 frames "of 10 hours"
    _encode(d / "ten_bit.mp4", FOUR_SECONDS, pix_fmt="yuv420p10le")
    _encode(d / "pq.mp4", FOUR_SECONDS, pix_fmt="yuv420p10le", trc=PQ)
    _encode(d / "hlg.mp4", FOUR_SECONDS, pix_fmt="yuv420p10le", trc=HLG)
    padded = d / "padded.mp4"  # the same clip plus 2 MB in a trailing `free` box: valid, and all padding
    padding = 2_000_000
    padded.write_bytes(
        (d / "ok.mp4").read_bytes() + struct.pack(">I", padding) + b"free" + bytes(padding - 8)
    )
    return d


def _reason(path: Path, limits: ClipLimits) -> str:
    with pytest.raises(ProbeError) as caught:
        probe_clip(path, limits=limits)
    return caught.value.reason


def test_frame_size_is_limited_by_side_and_by_pixels(clips: Path) -> None:
    ok = clips / "ok.mp4"
    assert probe_clip(ok, limits=ClipLimits()).width == 64
    assert probe_clip(ok, limits=ClipLimits(max_side_px=64, max_pixels=64 * 48)).height == 48
    assert _reason(ok, ClipLimits(max_side_px=63)) == "frame_too_large"
    assert _reason(ok, ClipLimits(max_pixels=64 * 48 - 1)) == "frame_too_large"


def test_duration_and_file_size_are_limited(clips: Path) -> None:
    ok = clips / "ok.mp4"
    size = ok.stat().st_size
    assert probe_clip(ok, limits=ClipLimits(max_duration_s=4.5, max_file_bytes=size)).duration_s < 4.5
    assert _reason(ok, ClipLimits(max_duration_s=3.5)) == "too_long"
    assert _reason(ok, ClipLimits(max_file_bytes=size - 1)) == "file_too_large"
    assert _reason(clips / "ten_hours.mp4", ClipLimits()) == "too_long"


def test_bytes_per_second_catch_a_padded_file(clips: Path) -> None:
    ok, padded = clips / "ok.mp4", clips / "padded.mp4"
    rate = ok.stat().st_size / probe_clip(ok).duration_s
    limits = ClipLimits(max_bytes_per_s=2 * rate)  # the real clip is at `rate`, the padded one above 2x
    assert probe_clip(ok, limits=limits).size_bytes == ok.stat().st_size
    assert probe_clip(padded).duration_s == probe_clip(ok).duration_s  # the padding decodes as nothing
    assert _reason(padded, limits) == "bitrate_too_high"


def test_a_few_frames_do_not_make_a_long_clip(clips: Path) -> None:
    assert _reason(clips / "sparse.mp4", ClipLimits()) == "sparse_frames"
    # Allowed 10 hours, the 8-frame "10-hour" file is still refused: its frames do not fill the time.
    with pytest.raises(ProbeError) as caught:
        probe_clip(clips / "ten_hours.mp4", limits=ClipLimits(max_duration_s=40_000))
    assert caught.value.reason == "sparse_frames" and "8 frames" in caught.value.detail
    assert probe_clip(clips / "sparse.mp4", limits=ClipLimits(min_decoded_fps=0.1)).duration_s > 50


def test_ten_bit_sdr_is_flagged_and_kept_hdr_is_refused(clips: Path) -> None:
    ten = probe_clip(clips / "ten_bit.mp4")
    assert (ten.bit_depth, ten.pix_fmt, ten.color_transfer) == (10, "yuv420p10le", "unknown")
    ok = probe_clip(clips / "ok.mp4")
    assert (ok.bit_depth, ok.pix_fmt) == (8, "yuv420p")
    for name, transfer in (("pq.mp4", "smpte2084"), ("hlg.mp4", "arib-std-b67")):
        with pytest.raises(ProbeError) as caught:
            probe_clip(clips / name)
        assert caught.value.reason == "hdr_unsupported" and transfer in caught.value.detail


def test_verification_records_each_limit_as_a_rejection_reason(clips: Path) -> None:
    limits = ClipLimits(max_side_px=4096)
    results = {
        name: verify_job(eligible_job(i, name), clips, min_duration_s=3.0, limits=limits)
        for i, name in enumerate(["ok.mp4", "ten_bit.mp4", "sparse.mp4", "pq.mp4", "ten_hours.mp4"])
    }
    assert isinstance(results["ok.mp4"], VerifiedClip)
    ten = results["ten_bit.mp4"]
    assert isinstance(ten, VerifiedClip) and ten.probe.bit_depth == 10  # fingerprinted like any clip
    reasons = {n: r.reason for n, r in results.items() if isinstance(r, Rejection)}
    assert reasons == {
        "sparse.mp4": "sparse_frames",
        "pq.mp4": "hdr_unsupported",
        "ten_hours.mp4": "too_long",
    }


def test_limits_come_from_the_environment(clips: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONTAGE_CLIP_MAX_SIDE_PX", "32")
    monkeypatch.setenv("MONTAGE_CLIP_MAX_DURATION_S", "900")
    limits = load_settings().clip_limits  # what the code location hands the selection asset
    assert limits == ClipLimits.from_env() == ClipLimits(max_side_px=32, max_duration_s=900.0)
    [result] = verify_jobs([eligible_job(1, "ok.mp4")], clips, min_duration_s=3.0, workers=1, limits=limits)
    assert isinstance(result, Rejection) and result.reason == "frame_too_large"
    assert "64x48" in result.detail
    for bad in ("lots", "0", "-5"):
        monkeypatch.setenv("MONTAGE_CLIP_MAX_SIDE_PX", bad)
        with pytest.raises(ValueError, match="MONTAGE_CLIP_MAX_SIDE_PX"):
            load_settings()
