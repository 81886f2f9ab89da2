"""The soundtrack's whole-track passes work a block at a time: the same result as the whole track at once,
in memory that does not grow with copies of the track (issue 17: the 247 s long cut's master held 1.7 GB).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from montage_pipeline.media.audio_specs import audio_failures, decode_audio, inspect_audio
from montage_pipeline.media.loudness import LoudnessMeter, measure_loudness
from montage_pipeline.media.mix import BLOCK, RATE, _true_peak_envelope, combine, master
from montage_pipeline.media.mux import encode_soundtrack


def _noise_bursts(seconds: float, seed: int = 3) -> np.ndarray:
    """Stereo noise with loud bursts: peaks between samples and a loudness that moves."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    loud = (np.sin(2 * np.pi * 0.3 * np.arange(n) / RATE) > 0.5) * 0.5 + 0.05
    return (rng.standard_normal((2, n)) * loud * 0.3).astype(np.float32)


def test_the_true_peak_envelope_of_blocks_is_the_whole_tracks() -> None:
    """Every oversampled point near a block's edge sees its neighbours in the next block."""
    pcm = _noise_bursts(2.5 * BLOCK / RATE)
    whole = np.abs(resample_poly(pcm, 4, 1, axis=1)).max(axis=0).reshape(-1, 4).max(axis=1)
    assert np.array_equal(_true_peak_envelope(pcm), whole.astype(np.float32))


def test_the_mix_of_blocks_is_the_sum_of_the_tracks() -> None:
    """Game at half level plus music at half level and its gain, to the last sample of every block."""
    game, music = _noise_bursts(2.3 * BLOCK / RATE, 1), _noise_bursts(2.3 * BLOCK / RATE, 2)
    mixed = combine(music, game, music_gain_db=-4.0)
    expected = 0.5 * game + 0.5 * 10 ** (-4.0 / 20) * music
    whole_ms = game.shape[1] - game.shape[1] % (RATE // 1000)  # pydub keeps whole milliseconds
    assert np.abs(mixed[:, :whole_ms] - expected[:, :whole_ms]).max() < 1e-6
    # Written into the music's own buffer (as `build_mix` does), block after block: the same mix.
    in_place = music.copy()
    assert np.array_equal(combine(in_place, game, music_gain_db=-4.0, out=in_place), mixed)


@pytest.mark.parametrize("chunk", [1000, 4800, 77_777, None])
def test_the_meter_reads_the_same_however_the_signal_is_handed_to_it(chunk: int | None) -> None:
    """Frames of any size, or the whole signal at once (None)."""
    pcm = _noise_bursts(7.3)
    step = chunk or pcm.shape[1]
    meter = LoudnessMeter(2)
    for i in range(0, pcm.shape[1], step):
        meter.add(pcm[:, i : i + step])
    assert meter.result() == measure_loudness(pcm)


def test_the_check_of_a_file_read_frame_by_frame_reads_what_the_whole_file_gives(tmp_path: Path) -> None:
    """Loudness, peak and the longest silence, across AAC frames: 3 s of digital silence mid-track."""
    pcm = _noise_bursts(12.0)
    pcm[:, 4 * RATE : 7 * RATE] = 0.0
    path = tmp_path / "soundtrack.m4a"
    encode_soundtrack(pcm, path)
    report, decoded = inspect_audio(path), decode_audio(path)
    whole = measure_loudness(decoded)
    assert (report.integrated_lufs, report.true_peak_dbtp, report.loudness_range_lu) == (
        round(whole.integrated_lufs, 2),
        round(whole.true_peak_dbtp, 2),
        round(whole.loudness_range_lu, 2),
    )
    assert report.short_term_lufs == whole.short_term_lufs
    assert report.audio_duration_s == decoded.shape[1] / RATE
    # The encoder's pre-echo shortens the run by a few milliseconds at either edge.
    assert report.longest_silence_s == pytest.approx(3.0, abs=0.05)
    assert any("digital silence" in f for f in audio_failures(report))


def test_the_master_holds_a_few_copies_of_the_track_however_long_it_is() -> None:
    """Peak memory of mastering (its result included) against the track's own size: three copies at most,
    at any length (the whole-track passes held twenty)."""
    pcm = _noise_bursts(60.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out, report = master(pcm)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert out.shape == pcm.shape
    assert report.integrated_lufs == pytest.approx(-14.0, abs=0.3)
    assert peak <= 3 * pcm.nbytes, f"peak {peak / 1e6:.0f} MB for a {pcm.nbytes / 1e6:.0f} MB track"
