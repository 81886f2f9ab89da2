"""An optional library of real music: pick a week's track, find its tempo and beats, fit it to the edit.

Tracks (WAV, FLAC, MP3, OGG, M4A) are decoded with PyAV. The tempo comes from the autocorrelation of an
onset-strength envelope (spectral flux at 100 Hz), searched in 80–180 BPM and folded into the montage's
usual range; the beat phase is the offset whose beat positions collect the most onset strength. The
track then starts at its first beat, so its beats fall on the edit's beat grid.

A week with a theme (its most featured game, or an admin's choice) takes its track from the library's
subfolder named after the theme's slug (`<library>/doom/` for "Doom") when that folder holds tracks,
else from the library's own files as before; the subfolders' tracks are never chosen for other weeks.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from montage_pipeline.media.audio_batches import BatchedResampler

RATE = 48_000
ENV_RATE = 200  # onset envelope frames per second (fine enough that a beat's lag is not split)
EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")


@dataclass(frozen=True, slots=True)
class TrackBeats:
    path: Path
    tempo_bpm: float
    first_beat_s: float


def list_tracks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())


def choose_track(tracks: list[Path], week: str) -> Path:
    """The week's track: a stable choice seeded by the week key."""
    return random.Random(zlib.crc32(week.encode())).choice(tracks)


def decode_track(path: Path, max_s: float | None = None) -> np.ndarray:
    """Stereo float32 (2, n) at 48 kHz."""
    resampler = BatchedResampler("fltp", "stereo", RATE)
    chunks: list[np.ndarray] = []
    total = 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for pcm in resampler.resample(frame):
                chunks.append(pcm)
                total += pcm.shape[1]
            if max_s is not None and total >= max_s * RATE:
                break
    chunks += resampler.flush()
    pcm = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    return pcm[:, : round(max_s * RATE)] if max_s is not None else pcm


def onset_envelope(pcm: np.ndarray, max_hz: float | None = None) -> np.ndarray:
    """Spectral flux at ENV_RATE frames per second (frame i centred at i / ENV_RATE + 1024 samples);
    `max_hz` keeps only the low band (kicks and bass mark the beat's phase)."""
    mono = pcm.mean(axis=0)
    hop, size = RATE // ENV_RATE, 2048
    window = np.hanning(size)
    n = max(0, (len(mono) - size) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(mono, size)[::hop][:n] * window
    spectrum = np.log1p(np.abs(np.fft.rfft(frames, axis=1)))
    if max_hz is not None:
        spectrum = spectrum[:, : max(2, int(max_hz * size / RATE))]
    flux = np.maximum(np.diff(spectrum, axis=0), 0).sum(axis=1)
    flux = np.concatenate([[0.0], flux])
    return (flux - flux.mean()) / (flux.std() + 1e-9)


def estimate_beats(
    path: Path, tempo_range: tuple[float, float] = (100.0, 160.0), analyse_s: float = 60.0
) -> TrackBeats:
    pcm = decode_track(path, max_s=analyse_s)
    env = onset_envelope(pcm)
    lags = np.arange(int(ENV_RATE * 60 / 200), int(ENV_RATE * 60 / 60) + 1)

    full = np.arange(1, 4 * lags[-1] + 2)
    raw = np.array(
        [np.dot(env[:-lag], env[lag:]) / (len(env) - lag) if lag < len(env) else 0.0 for lag in full]
    )
    smooth = np.convolve(raw, [0.25, 0.5, 0.25], mode="same")  # a peak between two lags still counts whole

    def ac(lag: int) -> float:
        return float(smooth[lag - 1]) if lag - 1 < len(smooth) else 0.0

    # A beat's period also repeats at two and four beats (the bar): sum those, and prefer tempos near
    # 120 BPM (a log-normal prior, one octave wide), as tempo estimators commonly do.
    scores = np.array([ac(int(lag)) + 0.5 * ac(int(2 * lag)) + 0.25 * ac(int(4 * lag)) for lag in lags])
    bpm = 60 * ENV_RATE / lags
    prior = np.exp(-0.5 * (np.log2(bpm / 120.0) / 1.0) ** 2)
    i = int(np.argmax(scores * prior))
    best = float(bpm[i])
    if 0 < i < len(scores) - 1:  # parabolic refinement: sub-frame tempo accuracy
        a, b, c = scores[i - 1], scores[i], scores[i + 1]
        denominator = a - 2 * b + c
        shift = 0.5 * (a - c) / denominator if denominator != 0 else 0.0
        best = 60 * ENV_RATE / (lags[i] + shift)
    lo, hi = tempo_range
    centre = (lo * hi) ** 0.5
    best = min((best * 2.0**k for k in range(-2, 3)), key=lambda t: abs(np.log2(t / centre)))
    period = ENV_RATE * 60 / best
    low = onset_envelope(pcm, max_hz=150.0)
    phases = np.arange(0, period, 0.5)
    strength = [low[np.round(np.arange(p, len(low) - 1, period)).astype(int)].sum() for p in phases]
    first = float(phases[int(np.argmax(strength))]) / ENV_RATE + 1024 / RATE
    return TrackBeats(path, round(best, 2), round(first, 4))


def fit_track(beats: TrackBeats, duration_s: float, fade_out_s: float = 2.0) -> np.ndarray:
    """The track from its first beat, cut (with a fade-out) or looped on whole bars to `duration_s`."""
    pcm = decode_track(beats.path)[:, round(beats.first_beat_s * RATE) :]
    n = round(duration_s * RATE)
    if pcm.shape[1] < n:  # loop on a whole number of bars so the grid continues
        bar = round(4 * 60 / beats.tempo_bpm * RATE)
        usable = max(bar, pcm.shape[1] // bar * bar)
        reps = int(np.ceil(n / usable))
        pcm = np.tile(pcm[:, :usable], (1, reps))
    out = pcm[:, :n].astype(np.float32)
    k = min(n, round(fade_out_s * RATE))
    out[:, n - k :] *= np.linspace(1, 0, k, dtype=np.float32)
    peak = float(np.abs(out).max()) or 1.0
    return out * np.float32(10 ** (-6 / 20) / peak)


def week_track_path(folder: Path | None, week: str, theme_slug: str | None = None) -> Path | None:
    """The week's track file: from the theme's subfolder when it holds tracks, else from the library's
    own files; None without a library (or an empty one)."""
    if folder is None:
        return None
    themed = folder / theme_slug if theme_slug else None
    if themed is not None and themed.is_dir() and (tracks := list_tracks(themed)):
        return choose_track(tracks, week)
    tracks = list_tracks(folder)
    return choose_track(tracks, week) if tracks else None


def week_track(folder: Path | None, week: str, theme_slug: str | None = None) -> TrackBeats | None:
    """The week's track (see `week_track_path`) with its beats, or None."""
    path = week_track_path(folder, week, theme_slug)
    return estimate_beats(path) if path is not None else None
