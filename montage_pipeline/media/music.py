"""Music generated on the montage's beat grid: drums, bass, pads and an arpeggio, no download.

The track is synthesised with numpy at 48 kHz stereo and seeded by the week, so a rerun of a week gives
the same music. Its structure follows the edit: a sparse intro under the title card (pads and hats),
drums and bass from the first cut, the arpeggio joining as the clips' energy rises, a crash on each cut,
and a final chord that rings out from the last cut. Every note has an attack and release envelope, so
nothing clicks; the bus is normalised to a -6 dBFS peak, leaving the mastering to the mix.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RATE = 48_000
# Minor-key progressions as scale degrees (semitones from the key's root) per bar.
PROGRESSIONS = (
    ((0, 3, 7), (8, 12, 15), (3, 7, 10), (10, 14, 17)),  # i – VI – III – VII
    ((0, 3, 7), (5, 8, 12), (8, 12, 15), (7, 11, 14)),  # i – iv – VI – V
    ((0, 3, 7), (10, 14, 17), (8, 12, 15), (10, 14, 17)),  # i – VII – VI – VII
)


@dataclass(frozen=True, slots=True)
class MusicPlan:
    tempo_bpm: float
    duration_s: float
    intro_s: float
    cut_times_s: tuple[float, ...]  # montage times of the cuts between clips (on beats)
    energy: tuple[float, ...]  # 0..1 per clip, in montage order
    seed: int

    @property
    def beat_s(self) -> float:
        return 60.0 / self.tempo_bpm


def plan_for_week(
    week: str,
    tempo_bpm: float,
    duration_s: float,
    intro_s: float,
    cuts: Sequence[float],
    energy: Sequence[float],
) -> MusicPlan:
    return MusicPlan(tempo_bpm, duration_s, intro_s, tuple(cuts), tuple(energy), zlib.crc32(week.encode()))


def _env(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n, dtype=np.float32)
    a, r = min(attack, n), min(release, n)
    env[:a] = np.linspace(0, 1, a, endpoint=False)
    env[n - r :] *= np.linspace(1, 0, r)
    return env


def _add(bus: np.ndarray, start_s: float, sound: np.ndarray, pan: float = 0.0) -> None:
    """Mix a mono sound into the stereo bus at a time, with constant-power panning."""
    i = round(start_s * RATE)
    if i >= bus.shape[1] or i + len(sound) <= 0:
        return
    j = min(bus.shape[1], i + len(sound))
    part = sound[: j - i]
    left, right = np.cos((pan + 1) * np.pi / 4), np.sin((pan + 1) * np.pi / 4)
    bus[0, i:j] += part * left
    bus[1, i:j] += part * right


def _kick() -> np.ndarray:
    t = np.arange(int(0.35 * RATE)) / RATE
    freq = 48 + 110 * np.exp(-t * 30)
    return (np.sin(2 * np.pi * np.cumsum(freq) / RATE) * np.exp(-t * 9) * _env(len(t), 48, 480)).astype(
        np.float32
    )


def _snare(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * RATE)) / RATE
    noise = rng.normal(0, 1, len(t)) * np.exp(-t * 22)
    tone = np.sin(2 * np.pi * 190 * t) * np.exp(-t * 30)
    return ((0.55 * noise + 0.5 * tone) * _env(len(t), 24, 480)).astype(np.float32)


def _hat(rng: np.random.Generator, length_s: float = 0.06) -> np.ndarray:
    n = int(length_s * RATE)
    noise = rng.normal(0, 1, n)
    noise = np.diff(noise, prepend=0.0)  # a crude high-pass: hats live above the rest
    return (0.25 * noise * np.exp(-np.arange(n) / RATE * 60) * _env(n, 12, 240)).astype(np.float32)


def _crash(rng: np.random.Generator) -> np.ndarray:
    n = int(1.6 * RATE)
    noise = np.diff(rng.normal(0, 1, n), prepend=0.0)
    return (0.3 * noise * np.exp(-np.arange(n) / RATE * 2.5) * _env(n, 24, 2400)).astype(np.float32)


def _saw(freq: float, n: int, detune: float = 0.0) -> np.ndarray:
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for cents in (-detune, detune) if detune else (0.0,):
        f = freq * 2 ** (cents / 1200)
        phase = t * f
        # The phase's fraction: `phase % 1.0` to the bit (exact for phase >= 0), a twelfth of its time
        # (NumPy's float remainder goes through fmod and a sign fix); the saws were half the music's time.
        out += 2 * (phase - np.floor(phase)) - 1
    return out / (2 if detune else 1)


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    from scipy.signal import lfilter

    a = np.exp(-2 * np.pi * cutoff / RATE)
    return lfilter([1 - a], [1, -a], x).astype(np.float32)


def _note_hz(semitones_from_a4: float) -> float:
    return 440.0 * 2 ** (semitones_from_a4 / 12)


@dataclass(frozen=True, slots=True)
class _Kit:
    """The drum sounds, drawn once per track (in this order, from the track's seed)."""

    kick: np.ndarray
    snares: list[np.ndarray]
    hats: list[np.ndarray]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Kit:
        return cls(_kick(), [_snare(rng) for _ in range(4)], [_hat(rng) for _ in range(8)])


@dataclass(frozen=True, slots=True)
class _Bar:
    """One bar of the track: where it starts, its chord and the key's root."""

    t0: float
    beat: float
    chord: tuple[int, ...]
    key: int
    last_cut: float  # drums, bass and arpeggio stop here

    @property
    def bass_root(self) -> int:
        return self.key + self.chord[0] - 24


def generate(plan: MusicPlan) -> np.ndarray:
    """The stereo track, shape (2, samples), float32, peak at -6 dBFS."""
    rng = np.random.default_rng(plan.seed)
    pick = random.Random(plan.seed)
    progression = pick.choice(PROGRESSIONS)
    key = pick.randint(-9, -2)  # the key's root, in semitones from A4 (C4..G4 region, bass an octave+ down)
    # Sounds that ring past the end are cut there (`_add`); the track is normalised in place, so the
    # bus is the only whole-track array.
    bus = np.zeros((2, round(plan.duration_s * RATE)), dtype=np.float32)
    beat = plan.beat_s
    bar_s = 4 * beat
    first_cut = plan.intro_s
    last_cut = plan.cut_times_s[-1] if plan.cut_times_s else plan.duration_s
    kit = _Kit.draw(rng)
    cuts = [first_cut, *plan.cut_times_s]
    for b in range(int(np.ceil(plan.duration_s / bar_s))):
        bar = _Bar(b * bar_s, beat, progression[b % len(progression)], key, last_cut)
        in_intro = bar.t0 + bar_s <= first_cut + 1e-6
        _pads_and_hats(bus, bar, kit, in_intro)
        if in_intro:
            continue
        e = _energy_at(plan, cuts, bar.t0)
        _drums(bus, bar, kit, e)
        _bass(bus, bar)
        if e > 0.45:  # the arpeggio joins as the clips heat up
            _arpeggio(bus, bar)
    for cut in plan.cut_times_s:  # a crash on each cut
        _add(bus, cut, _crash(rng), pan=0.2)
    _ending(bus, progression[0], key, last_cut, kit)
    peak = max(float(bus.max(initial=0.0)), -float(bus.min(initial=0.0))) or 1.0
    bus *= np.float32(10 ** (-6 / 20) / peak)
    return bus


def _energy_at(plan: MusicPlan, cuts: Sequence[float], t: float) -> float:
    """The energy of the clip playing at `t` (0.5 without any)."""
    idx = max(0, sum(1 for c in cuts if c <= t) - 1)
    return plan.energy[min(idx, len(plan.energy) - 1)] if plan.energy else 0.5


def _pads_and_hats(bus: np.ndarray, bar: _Bar, kit: _Kit, in_intro: bool) -> None:
    """Pads: the chord on detuned saws, slowly filtered, the whole bar; hats on every eighth."""
    pad_n = int(4 * bar.beat * RATE)
    pad = sum(_saw(_note_hz(bar.key + s - 12), pad_n, detune=9) for s in bar.chord)
    pad = _lowpass(np.asarray(pad), 900 if in_intro else 1500) * _env(
        pad_n, int(0.08 * RATE), int(0.1 * RATE)
    )
    _add(bus, bar.t0, 0.07 * pad, pan=-0.3)
    _add(bus, bar.t0, 0.07 * pad, pan=0.3)
    for k in range(8):  # louder on the off-beats
        _add(bus, bar.t0 + k * bar.beat / 2, kit.hats[k] * (0.6 if k % 2 == 0 else 0.9), pan=0.35)


def _drums(bus: np.ndarray, bar: _Bar, kit: _Kit, energy: float) -> None:
    """Kick on one and three (every beat when the energy is high), snare on two and four."""
    for k in range(4):
        t = bar.t0 + k * bar.beat
        if t >= bar.last_cut:
            break
        if k in (0, 2) or energy > 0.6:
            _add(bus, t, 0.9 * kit.kick)
        if k in (1, 3):
            _add(bus, t, 0.45 * kit.snares[k], pan=-0.05)


def _bass(bus: np.ndarray, bar: _Bar) -> None:
    """Eighth-note pulses on the chord's root."""
    for k in range(8):
        t = bar.t0 + k * bar.beat / 2
        if t >= bar.last_cut:
            break
        m = int(bar.beat / 2 * RATE)
        note = _lowpass(_saw(_note_hz(bar.bass_root), m), 420) * _env(m, 96, int(0.02 * RATE))
        _add(bus, t, 0.32 * note)


def _arpeggio(bus: np.ndarray, bar: _Bar) -> None:
    """Sixteenth notes up the chord and an octave above, panned left and right."""
    for k in range(16):
        t = bar.t0 + k * bar.beat / 4
        if t >= bar.last_cut:
            break
        semis = bar.chord[k % 3] + (12 if (k // 3) % 2 else 0)
        m = int(bar.beat / 4 * RATE)
        tone = np.sin(2 * np.pi * _note_hz(bar.key + semis) * np.arange(m) / RATE) * np.exp(
            -np.arange(m) / RATE * 8
        )
        _add(bus, t, 0.08 * (tone * _env(m, 48, 240)).astype(np.float32), pan=0.5 if k % 2 else -0.5)


def _ending(bus: np.ndarray, final: tuple[int, ...], key: int, last_cut: float, kit: _Kit) -> None:
    """A full chord from the last cut, ringing out a second past the track's end (where it is cut), on
    a last kick."""
    tail_n = bus.shape[1] + RATE - round(last_cut * RATE)
    if tail_n <= 0:
        return
    ring = sum(_saw(_note_hz(key + s - 12), tail_n, detune=6) for s in (*final, 12))
    ring = (
        _lowpass(np.asarray(ring), 1800)
        * np.exp(-np.arange(tail_n) / RATE * 1.2)
        * _env(tail_n, 96, RATE // 4)
    )
    _add(bus, last_cut, 0.12 * ring.astype(np.float32))
    _add(bus, last_cut, 1.0 * kit.kick)
