"""The soundtrack's whole-track passes work a block at a time: the same result as the whole track at once,
in memory that does not grow with copies of the track (issue 17: the 247 s long cut's master held 1.7 GB).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from montage_pipeline.media.audio_specs import audio_failures, decode_audio, inspect_audio
from montage_pipeline.media.loudness import LoudnessMeter, measure_loudness
from montage_pipeline.media.mix import (
    BLOCK,
    RATE,
    _filter_in_blocks,
    _true_peak_envelope,
    combine,
    duck_gain,
    master,
)
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


@pytest.mark.parametrize("filter1d", [minimum_filter1d, uniform_filter1d])
def test_a_filter_worked_in_place_block_by_block_gives_the_whole_lines_result(filter1d: object) -> None:
    """The limiter's look-ahead minimum and smoothing: every point near a block's edge sees its original
    neighbours on both sides, although the block before was already overwritten."""
    line = np.abs(_noise_bursts(2.5 * BLOCK / RATE)[0])
    whole = filter1d(line, size=481)  # type: ignore[operator]
    filter_in_place = line.copy()
    _filter_in_blocks(filter1d, filter_in_place, 481)  # type: ignore[arg-type]
    np.testing.assert_allclose(filter_in_place, whole, rtol=1e-6, atol=1e-9)
    if filter1d is minimum_filter1d:
        assert np.array_equal(filter_in_place, whole)


def test_the_ducking_gain_of_blocks_is_the_whole_tracks() -> None:
    """The game's level is followed every millisecond from a 20 ms moving average of its power: the same
    average and the same gain, a block at a time."""
    game = _noise_bursts(2.5 * BLOCK / RATE + 0.0137)
    gain = duck_gain(game)
    assert gain.shape == (game.shape[1],)
    assert gain.min() < 10 ** (-6 / 20) and gain.max() > 10 ** (-3 / 20)  # it ducks, and lets go
    expected = duck_gain_whole_track(game)
    np.testing.assert_allclose(gain, expected, rtol=1e-5)


def duck_gain_whole_track(game: np.ndarray, duck_db: float = 9.0) -> np.ndarray:
    """The ducking gain as the whole-track pass made it (the reference for the blocks)."""
    step = RATE // 1000
    power = np.square(game[0]) + np.square(game[1])
    power /= 2
    level = np.sqrt(np.maximum(uniform_filter1d(power, size=int(0.02 * RATE))[::step], 0.0))
    amount = np.clip((20 * np.log10(level + 1e-9) + 40) / 25, 0, 1)
    up, down = np.exp(-1 / (0.01 * RATE)) ** step, np.exp(-1 / (0.4 * RATE)) ** step
    follow, acc = np.empty_like(amount), 0.0
    for k, v in enumerate(amount):
        acc = v + (acc - v) * (up if v > acc else down)
        follow[k] = acc
    return np.repeat((10 ** (-duck_db * follow / 20)).astype(np.float32), step)[: game.shape[1]]


def test_the_masters_resident_memory_stays_near_two_copies_of_its_track(tmp_path: Path) -> None:
    """What the process really holds (its resident high-water mark, in a fresh interpreter), which
    tracemalloc does not see: SciPy's filters copy a whole line into float64 buffers of their own, two
    more copies of the track, unless they work a block at a time."""
    path = tmp_path / "track.npy"
    track = np.empty((2, 120 * RATE), np.float32)
    for a in range(0, track.shape[1], BLOCK):
        track[:, a : a + BLOCK] = _noise_bursts(BLOCK / RATE, seed=a)
    np.save(path, track)
    script = textwrap.dedent(
        """
        import resource, sys
        import numpy as np
        from montage_pipeline.media.mix import master
        pcm = np.load(sys.argv[1])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        master(pcm)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before) / pcm.nbytes)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    copies = float(run.stdout.split()[-1])
    # The mastered copy, the envelope and the limiter's gain (half a track each): 2.2 measured; 3.1
    # with SciPy's whole-line buffers.
    assert copies <= 2.6, f"the master's peak held {copies:.2f} copies of the track above its input"
