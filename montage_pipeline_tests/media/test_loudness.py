"""Loudness, loudness range and true peak against the EBU's reference signals (Tech 3341 and 3342).

The expected figures and tolerances are the EBU's: a meter that reads them is EBU Mode compliant. The
signals are made here as the documents describe them (stereo 1 kHz sines, levels as the sine's peak).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from montage_pipeline.media.audio_specs import inspect_audio
from montage_pipeline.media.loudness import (
    SHORT_TERM_STEP_S,
    SHORT_TERM_WINDOW_S,
    SILENT_DB,
    SILENT_LUFS,
    loudness_plot,
    measure_loudness,
)
from montage_pipeline.media.mix import RATE
from montage_pipeline.media.mux import encode_soundtrack


def _sine(level_dbfs: float, seconds: float, hz: float = 1000.0, phase: float = 0.0) -> np.ndarray:
    """A stereo sine whose peak is at `level_dbfs` on both channels."""
    t = np.arange(round(seconds * RATE)) / RATE
    wave = (10 ** (level_dbfs / 20) * np.sin(2 * np.pi * hz * t + phase)).astype(np.float32)
    return np.stack([wave, wave])


def _faded(pcm: np.ndarray, seconds: float = 0.05) -> np.ndarray:
    """Raised-cosine fades at both ends: a tone switched on at full level rings past its own peak when
    band-limited, which a true-peak meter rightly reports."""
    n = round(seconds * RATE)
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
    out = pcm.copy()
    out[:, :n] *= ramp
    out[:, -n:] *= ramp[::-1]
    return out


def _sequence(*parts: tuple[float, float]) -> np.ndarray:
    """Stereo 1 kHz sines of (level dBFS, seconds), one after the other."""
    return np.concatenate([_sine(level, seconds) for level, seconds in parts], axis=1)


def _ungated_lufs(pcm: np.ndarray) -> float:
    """What a meter without gating would read for these 1 kHz sines: BS.1770's -0.691 dB offset and the
    K-weighting's gain at 1 kHz cancel, leaving the channels' summed mean square."""
    return float(10 * np.log10((pcm.astype(np.float64) ** 2).mean(axis=1).sum()))


@pytest.mark.parametrize(
    ("case", "parts", "expected"),
    [
        ("3341-1", [(-23.0, 20.0)], -23.0),
        ("3341-2", [(-33.0, 20.0)], -33.0),
        ("3341-3 relative gate", [(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
        (
            "3341-4 both gates",
            [(-72.0, 10.0), (-36.0, 10.0), (-23.0, 20.0), (-36.0, 10.0), (-72.0, 10.0)],
            -23.0,
        ),
        ("3341-5", [(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
    ],
)
def test_integrated_loudness_reads_the_ebu_reference_signals(
    case: str, parts: list[tuple[float, float]], expected: float
) -> None:
    assert measure_loudness(_sequence(*parts)).integrated_lufs == pytest.approx(expected, abs=0.1), case


def test_a_997_hz_sine_at_minus_20_dbfs_reads_minus_20_lufs() -> None:
    measured = measure_loudness(_sine(-20.0, 10.0, hz=997.0))
    assert measured.integrated_lufs == pytest.approx(-20.0, abs=0.1)
    assert measured.true_peak_dbtp == pytest.approx(-20.0, abs=0.1)
    assert measured.loudness_range_lu == pytest.approx(0.0, abs=0.1)


def test_silence_is_gated_out_of_the_integrated_loudness() -> None:
    """A tone followed by as much silence reads as the tone: without the gates it would read 3 dB lower."""
    pcm = np.concatenate([_sine(-20.0, 10.0), np.zeros((2, 10 * RATE), np.float32)], axis=1)
    measured = measure_loudness(pcm)
    assert measured.integrated_lufs == pytest.approx(-20.0, abs=0.1)
    assert _ungated_lufs(pcm) == pytest.approx(-23.0, abs=0.1)
    silent = measure_loudness(np.zeros((2, 5 * RATE), np.float32))
    assert (silent.integrated_lufs, silent.true_peak_dbtp) == (SILENT_LUFS, SILENT_DB)


@pytest.mark.parametrize(
    ("case", "parts", "expected"),
    [
        ("3342-1", [(-20.0, 20.0), (-30.0, 20.0)], 10.0),
        ("3342-2", [(-20.0, 20.0), (-15.0, 20.0)], 5.0),
        ("3342-3", [(-40.0, 20.0), (-20.0, 20.0)], 20.0),
        ("3342-4", [(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)], 15.0),
    ],
)
def test_loudness_range_reads_the_ebu_reference_signals(
    case: str, parts: list[tuple[float, float]], expected: float
) -> None:
    assert measure_loudness(_sequence(*parts)).loudness_range_lu == pytest.approx(expected, abs=1.0), case


def test_short_term_loudness_follows_a_step_over_its_3_s_window() -> None:
    measured = measure_loudness(_sequence((-30.0, 10.0), (-20.0, 10.0)))
    values = np.array(measured.short_term_lufs)

    def at(seconds: float) -> float:
        return float(values[round((seconds - SHORT_TERM_WINDOW_S) / SHORT_TERM_STEP_S)])

    assert len(values) == round((20.0 - SHORT_TERM_WINDOW_S) / SHORT_TERM_STEP_S) + 1  # 3 s ... 20 s
    assert at(9.0) == pytest.approx(-30.0, abs=0.1)
    assert -30.0 + 1.0 < at(11.5) < -20.0 - 1.0  # half the window at each level
    assert at(13.0) == pytest.approx(-20.0, abs=0.1)


def test_the_true_peak_between_samples_is_found_above_the_sample_peak() -> None:
    """Tech 3341's true-peak signal: a quarter-rate sine whose samples fall 45° off its crests, so they
    read 3 dB under its real peak. The tolerance is the EBU's (+0.2 / -0.4 dB)."""
    measured = measure_loudness(_faded(_sine(-6.0, 2.0, hz=RATE / 4, phase=np.pi / 4)))
    assert measured.sample_peak_dbfs == pytest.approx(-6.0 - 3.01, abs=0.05)
    assert -6.0 - 0.4 <= measured.true_peak_dbtp <= -6.0 + 0.2
    assert measured.true_peak_dbtp - measured.sample_peak_dbfs > 2.5


def test_a_peak_in_the_last_samples_is_measured() -> None:
    pcm = _sine(-40.0, 1.0 + 1234 / RATE)
    pcm[:, -2:] = 0.9
    assert measure_loudness(pcm).sample_peak_dbfs == pytest.approx(20 * np.log10(0.9), abs=0.01)


def test_the_spec_check_reads_an_encoded_file(tmp_path: Path) -> None:
    """The figures `meets_audio_spec` and the export gate judge come from the decoded AAC."""
    path = tmp_path / "tone.m4a"
    encode_soundtrack(_faded(_sine(-20.0, 8.0, hz=997.0)), path)
    report = inspect_audio(path)
    assert report.integrated_lufs == pytest.approx(-20.0, abs=0.1)
    assert report.true_peak_dbtp == pytest.approx(-20.0, abs=0.2)
    assert report.loudness_range_lu == pytest.approx(0.0, abs=0.2)
    assert len(report.short_term_lufs) > 40
    assert np.allclose(report.short_term_lufs, -20.0, atol=0.2)


def test_the_loudness_plot_draws_the_short_term_loudness_at_its_level() -> None:
    """A -20 LUFS passage and a -30 LUFS one: the plotted line sits at those heights (0 to -40 LUFS)."""
    measured = measure_loudness(_sequence((-20.0, 10.0), (-30.0, 10.0)))
    plot = np.asarray(loudness_plot(measured.short_term_lufs, -14.0, width=300, height=200)).astype(int)
    line = (plot[..., 0] > 200) & (plot[..., 1] > 150) & (plot[..., 2] < 120)  # the yellow curve
    rows = [float(np.flatnonzero(line[:, x]).mean()) for x in (20, 280)]
    assert rows[0] == pytest.approx(200 - 20 / 40 * 200, abs=3)
    assert rows[1] == pytest.approx(200 - 10 / 40 * 200, abs=3)
