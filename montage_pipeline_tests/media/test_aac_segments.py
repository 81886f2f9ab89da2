"""The soundtrack's AAC encoded in segments on several cores (issue 17): the joined file plays as the one
encoded in one piece does, on the same timeline, with nothing to hear at the joins, and the same packets
every time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.media.aac_segments import (
    AAC_FRAME,
    CPE,
    ONLY_LONG,
    AacFrame,
    encode_frames,
    join_frame,
    segments_for,
    window_of,
)
from montage_pipeline.media.audio_specs import decode_audio, measure_audio
from montage_pipeline.media.mix import RATE, master
from montage_pipeline.media.music import generate, plan_for_week
from montage_pipeline.media.mux import AAC_OPTIONS, encode_soundtrack

LONG_START, EIGHT_SHORT = 1, 2


def _soundtrack(seconds: float) -> np.ndarray:
    """A mastered soundtrack: the generated music on a beat of cuts, with noisy game audio in its middle
    third (noise is what costs an AAC encoder the most bits)."""
    cuts = [4.0 + 6 * i for i in range(int(seconds // 6) - 1)]
    plan = plan_for_week("2025-01-27", 120.0, seconds, 4.0, cuts, [0.6] * (len(cuts) + 1))
    pcm = np.ascontiguousarray(generate(plan)[:, : round(seconds * RATE)])
    third = pcm.shape[1] // 3
    pcm[:, third : 2 * third] += (
        np.random.default_rng(3).standard_normal((2, third)).astype(np.float32) * 0.05
    )
    return master(pcm)[0]


def _error_db(reference: np.ndarray, decoded: np.ndarray, a: int, b: int) -> float:
    """The decoded samples' error energy against the reference over [a, b), in dB under the signal."""
    ref = reference[:, a:b].astype(np.float64)
    return float(10 * np.log10(((ref - decoded[:, a:b]) ** 2).sum() / (ref**2).sum()))


def _audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(audio=0) if p.size]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Path, Path]:
    """A 40 s soundtrack encoded in one piece and in two segments."""
    folder = tmp_path_factory.mktemp("aac")
    pcm = _soundtrack(40.0)
    whole, joined = folder / "whole.m4a", folder / "joined.m4a"
    encode_soundtrack(pcm, whole, segments=1)
    encode_soundtrack(pcm, joined, segments=2)
    return pcm, whole, joined


def test_the_track_encoded_in_segments_measures_as_the_one_encoded_whole(
    encoded: tuple[np.ndarray, Path, Path],
) -> None:
    pcm, whole, joined = encoded
    one, two = measure_audio(whole).report, measure_audio(joined).report
    assert two.audio_duration_s == one.audio_duration_s
    assert abs(two.integrated_lufs - one.integrated_lufs) <= 0.05
    assert abs(two.true_peak_dbtp - one.true_peak_dbtp) <= 0.2
    # Same timeline: packets from 0 on, every decoded sample at its own time (the error is the encoder's
    # noise, ~-15 dB here, not a shifted copy, which would be near 0 dB).
    assert _audio_packets(joined)[0][0] == 0
    start, end = 2 * AAC_FRAME, pcm.shape[1]
    a, b = decode_audio(whole), decode_audio(joined)
    assert a.shape == b.shape
    # The later segment's rate control starts afresh (`WARM_UP` frames before its boundary): ~0.1 dB more
    # error over this 40 s track, ~0.02 dB over the 90 s of the bench's (`bench_soundtrack.py`).
    assert _error_db(pcm, b, start, end) <= _error_db(pcm, a, start, end) + 0.25
    assert _error_db(pcm, b, start, end) < -12.0


def test_nothing_is_heard_at_the_join(encoded: tuple[np.ndarray, Path, Path]) -> None:
    """Around the frame where the second segment takes over, the decoded audio is as close to the master
    as the one-piece encode is there: the windows overlapped as within one encoder. A join that breaks
    the overlap leaves the aliasing of a whole frame, some 10 dB or more of error."""
    pcm, whole, joined = encoded
    a, b = decode_audio(whole), decode_audio(joined)
    differs = np.flatnonzero(np.abs(a - b).max(axis=0) > 0)
    join = int(differs[0]) // AAC_FRAME  # the first sample that differs is in the join's frame
    assert abs(join * AAC_FRAME - pcm.shape[1] // 2) < 40 * AAC_FRAME
    around = (join - 1) * AAC_FRAME, (join + 2) * AAC_FRAME
    assert _error_db(pcm, b, *around) <= _error_db(pcm, a, *around) + 3.0


def test_the_segments_give_the_same_packets_every_time(
    encoded: tuple[np.ndarray, Path, Path], tmp_path: Path
) -> None:
    """Threads finish in any order; the file does not depend on it (the soundtrack made beside the render
    and after it must be the same packets)."""
    pcm, _, joined = encoded
    again = tmp_path / "again.m4a"
    encode_soundtrack(pcm, again, segments=2)
    digest = [hashlib.sha256(b"".join(d for _, d in _audio_packets(p))).hexdigest() for p in (joined, again)]
    assert digest[0] == digest[1]


def test_the_window_read_from_a_frame_is_the_encoders_choice() -> None:
    """Clicks in silence make the encoder switch to short windows around them: the frames read as
    EIGHT_SHORT there (after a LONG_START) and as ONLY_LONG in the steady tone elsewhere."""
    n = 6 * RATE
    t = np.arange(n) / RATE
    fades = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.5)  # no attack at the start or the end
    tone = 0.1 * np.sin(2 * np.pi * 440 * t) * fades
    pcm = np.stack([tone, tone]).astype(np.float32)
    clicks = [RATE * k + 300 for k in range(1, 6)]
    for c in clicks:
        pcm[:, c : c + 32] = 0.9
    frames, _ = encode_frames(pcm, 1, -(-n // AAC_FRAME), 320_000, AAC_OPTIONS)
    windows = {i: window_of(f.data) for i, f in frames.items()}
    shorts = {i for i, w in windows.items() if w is not None and w[0] == EIGHT_SHORT}
    assert shorts and all(any(abs(i * AAC_FRAME - c) < 3 * AAC_FRAME for c in clicks) for i in shorts)
    assert any(w is not None and w[0] == LONG_START for w in windows.values())
    steady = [windows[i] for i in range(20, 40)]
    assert all(w is not None and w[0] == ONLY_LONG for w in steady)


def test_a_track_with_nowhere_to_join_is_encoded_in_one_piece(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Clicks every 700 samples keep the encoder in short windows throughout: no frame past the boundary
    has a long window in both segments, so the track comes out as the one-piece encode, and says why."""
    n = 20 * RATE
    pcm = np.random.default_rng(1).standard_normal((2, n)).astype(np.float32) * 0.001
    for c in range(0, n, 700):
        pcm[:, c : c + 16] = 0.8
    whole, split = tmp_path / "whole.m4a", tmp_path / "split.m4a"
    encode_soundtrack(pcm, whole, segments=1)
    with caplog.at_level("WARNING", logger="montage_pipeline.media.aac_segments"):
        encode_soundtrack(pcm, split, segments=2)
    assert _audio_packets(split) == _audio_packets(whole)
    assert "the track encoded in one piece" in caplog.text


def _frame(index: int, sequence: int, shape: int = 0, common_window: int = 1) -> AacFrame:
    """A frame that starts like an encoder's channel pair: element, tag 0, common_window, ics_info."""
    bits = (CPE << 13) | (common_window << 8) | (sequence << 5) | (shape << 4)
    return AacFrame(index, bits.to_bytes(2, "big") + b"\0" * 8, AAC_FRAME)


def test_segments_join_only_after_a_frame_both_encoders_windowed_alike() -> None:
    before = {i: _frame(i, ONLY_LONG) for i in range(90, 110)}
    after = {i: _frame(i, ONLY_LONG) for i in range(80, 140)}
    assert join_frame(before, after, 100) == 100
    # Frame 99 started a short-window run in one encoder and not the other; 100 a different window
    # shape; 101 is no channel pair with one window: the first join that overlaps cleanly is 103.
    before[99] = _frame(99, LONG_START)
    before[100], after[100] = _frame(100, ONLY_LONG, shape=1), _frame(100, ONLY_LONG, shape=0)
    before[101], after[101] = _frame(101, ONLY_LONG, common_window=0), _frame(101, ONLY_LONG, common_window=0)
    assert join_frame(before, after, 100) == 103
    # Nothing alike before the earlier encoder's last frames: no join (the track is encoded whole).
    for i in range(100, 110):
        before[i] = _frame(i, EIGHT_SHORT)
    assert join_frame(before, after, 100) is None


def test_a_track_is_cut_in_segments_by_its_length_alone() -> None:
    frames_per_s = RATE / AAC_FRAME
    assert [segments_for(round(s * frames_per_s)) for s in (20, 60, 90, 180, 250, 3600)] == [1, 1, 2, 4, 6, 8]
