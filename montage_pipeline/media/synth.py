"""Gameplay-like demo clips, generated: real H.264/AAC MP4 files with planted, recorded events.

Used by `montage seed demo` and by the tests of every later stage, which must find what was planted:
hard scene cuts, calm stretches, bursts of fast motion, flashes (brightness jumps of a few frames) and
loud audio transients. Frames are drawn at low resolution with numpy and upscaled by libswscale in C,
so a 1080p clip costs about what its encode costs; audio is synthesised per 1024-sample frame. Nothing
is downloaded and no frame of the clip is held beyond the one being drawn.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from av.container import OutputContainer
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from scipy.ndimage import gaussian_filter
from scipy.signal import lfilter

log = logging.getLogger(__name__)

CANVAS_WIDTH = 384  # drawing resolution; the encoder input is upscaled from it
AUDIO_FRAME = 1024


@dataclass(frozen=True, slots=True)
class PlantedEvent:
    kind: str  # "flash", "fast_motion" or "loud"
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class ClipPlan:
    duration_s: float
    fps: int
    width: int = 1920
    height: int = 1080
    seed: int = 0
    has_audio: bool = True
    audio_channels: int = 2
    audio_rate: int = 48000
    cut_times_s: tuple[float, ...] | None = None
    events: tuple[PlantedEvent, ...] | None = None
    calm: bool = False


@dataclass(frozen=True, slots=True)
class PlantedTimeline:
    duration_s: float
    fps: int
    width: int
    height: int
    cut_times_s: tuple[float, ...]
    events: tuple[PlantedEvent, ...]
    calm_spans_s: tuple[tuple[float, float], ...]
    has_audio: bool

    def to_json_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cut_times_s"] = list(self.cut_times_s)
        d["calm_spans_s"] = [list(s) for s in self.calm_spans_s]
        return d

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> PlantedTimeline:
        return cls(
            duration_s=float(d["duration_s"]),
            fps=int(d["fps"]),
            width=int(d["width"]),
            height=int(d["height"]),
            cut_times_s=tuple(float(t) for t in d["cut_times_s"]),
            events=tuple(
                PlantedEvent(e["kind"], float(e["start_s"]), float(e["end_s"])) for e in d["events"]
            ),
            calm_spans_s=tuple((float(a), float(b)) for a, b in d["calm_spans_s"]),
            has_audio=bool(d["has_audio"]),
        )


def plan_clip(duration_s: float, fps: int, seed: int, **overrides: Any) -> ClipPlan:
    """A plan with cuts and action bursts drawn from `seed` (explicit overrides win)."""
    plan = ClipPlan(duration_s=duration_s, fps=fps, seed=seed)
    plan = replace(plan, **overrides)
    if plan.calm:
        return replace(plan, cut_times_s=plan.cut_times_s or (), events=plan.events or ())
    rng = random.Random(seed)
    cuts = plan.cut_times_s if plan.cut_times_s is not None else _draw_cuts(rng, duration_s)
    events = plan.events if plan.events is not None else _draw_bursts(rng, duration_s, fps, cuts)
    return replace(plan, cut_times_s=tuple(cuts), events=tuple(events))


def _draw_cuts(rng: random.Random, duration: float) -> tuple[float, ...]:
    n = max(0, int(duration / rng.uniform(6.0, 12.0)))
    cuts: list[float] = []
    for _ in range(n * 4):
        if len(cuts) == n:
            break
        t = round(rng.uniform(2.0, duration - 2.0), 2)
        if all(abs(t - c) >= 3.0 for c in cuts):
            cuts.append(t)
    return tuple(sorted(cuts))


def _draw_bursts(
    rng: random.Random, duration: float, fps: int, cuts: tuple[float, ...]
) -> tuple[PlantedEvent, ...]:
    """1–3 bursts of action (fast motion, a flash, a loud bang), away from cuts and from each other."""
    events: list[PlantedEvent] = []
    centres: list[float] = []
    for _ in range(40):
        if len(centres) >= max(1, min(3, int(duration / 10))):
            break
        t = round(rng.uniform(2.0, duration - 2.0), 2)
        if any(abs(t - c) < 1.2 for c in cuts) or any(abs(t - c) < 4.0 for c in centres):
            continue
        centres.append(t)
        flash_frames = rng.randint(3, 8)
        events += [
            PlantedEvent("fast_motion", round(max(0.0, t - 1.0), 3), round(min(duration, t + 1.5), 3)),
            PlantedEvent("flash", t, round(t + flash_frames / fps, 3)),
            PlantedEvent("loud", t, round(t + 0.25, 3)),
        ]
    return tuple(sorted(events, key=lambda e: (e.start_s, e.kind)))


def _calm_spans(duration: float, events: tuple[PlantedEvent, ...]) -> tuple[tuple[float, float], ...]:
    busy = sorted((e.start_s - 0.5, e.end_s + 0.5) for e in events)
    spans, cursor = [], 0.0
    for a, b in busy:
        if a - cursor >= 3.0:
            spans.append((round(cursor, 3), round(a, 3)))
        cursor = max(cursor, b)
    if duration - cursor >= 3.0:
        spans.append((round(cursor, 3), round(duration, 3)))
    return tuple(spans)


@dataclass(slots=True)
class _Scene:
    texture: np.ndarray  # (2h, 2w, 3) uint8, tileable
    far: np.ndarray  # parallax layer, same shape
    sprites: np.ndarray  # (n, 4): x, y, vx, vy in canvas pixels
    colours: list[tuple[int, int, int]]


def _texture(rng: np.random.Generator, h: int, w: int, palette: np.ndarray, blur: int) -> np.ndarray:
    noise = rng.random((h, w)).astype(np.float32)
    noise = gaussian_filter(noise, blur, mode="wrap")  # wraps, so the texture tiles seamlessly
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    idx = np.clip((noise * (len(palette) - 1)).round().astype(np.int64), 0, len(palette) - 1)
    tile = palette[idx].astype(np.uint8)
    return np.tile(tile, (2, 2, 1))


def _scene(rng: np.random.Generator, h: int, w: int) -> _Scene:
    base = rng.integers(20, 200, size=3)
    palette = np.array([np.clip(base + rng.integers(-60, 60, size=3), 0, 255) for _ in range(5)])
    far_palette = np.clip(palette * 0.6 + 30, 0, 255)
    n = int(rng.integers(3, 7))
    sprites = np.column_stack(
        [rng.uniform(0, w, n), rng.uniform(0, h, n), rng.normal(0, 1, n), rng.normal(0, 1, n)]
    )
    colours = [(int(r), int(g), int(b)) for r, g, b in rng.integers(60, 255, size=(n, 3))]
    return _Scene(_texture(rng, h, w, palette, 6), _texture(rng, h, w, far_palette, 14), sprites, colours)


class _Painter:
    """Draws frame n of the clip at canvas resolution."""

    def __init__(self, plan: ClipPlan, cw: int, ch: int) -> None:
        self.plan, self.cw, self.ch = plan, cw, ch
        rng = np.random.default_rng(plan.seed)
        self.scenes = [_scene(rng, ch, cw) for _ in range(len(plan.cut_times_s or ()) + 1)]
        self.cuts = plan.cut_times_s or ()
        self.fast = [(e.start_s, e.end_s) for e in plan.events or () if e.kind == "fast_motion"]
        self.flashes = [(e.start_s, e.end_s) for e in plan.events or () if e.kind == "flash"]
        self.cam = np.zeros(2)
        self.rng = np.random.default_rng(plan.seed + 1)
        self.hud = np.zeros((ch, cw), np.uint8)
        cv2.rectangle(self.hud, (int(cw * 0.04), int(ch * 0.9)), (int(cw * 0.3), int(ch * 0.94)), 255, -1)
        cx, cy = cw // 2, ch // 2
        cv2.line(self.hud, (cx - 6, cy), (cx + 6, cy), 255, 1)
        cv2.line(self.hud, (cx, cy - 6), (cx, cy + 6), 255, 1)

    def scene_index(self, t: float) -> int:
        """Which planned scene time `t` shows: one more for every cut at or before it."""
        return sum(1 for c in self.cuts if t >= c)

    def frame(self, t: float) -> np.ndarray:
        scene = self.scenes[self.scene_index(t)]
        fast = any(a <= t < b for a, b in self.fast)
        speed = 14.0 if fast else 0.8
        shake = self.rng.normal(0, 4.0, 2) if fast else np.zeros(2)
        self.cam += np.array([speed, speed * 0.35]) * (30.0 / self.plan.fps) + shake
        ch, cw = self.ch, self.cw
        x, y = int(self.cam[0]) % cw, int(self.cam[1]) % ch
        fx, fy = int(self.cam[0] * 0.4) % cw, int(self.cam[1] * 0.4) % ch
        img = scene.texture[y : y + ch, x : x + cw].copy()
        far = scene.far[fy : fy + ch, fx : fx + cw]
        img[: ch // 3] = far[: ch // 3]  # a distant band at the top: parallax like a horizon
        s = scene.sprites
        step = (6.0 if fast else 1.0) * (30.0 / self.plan.fps)
        s[:, 0] = (s[:, 0] + s[:, 2] * step) % cw
        s[:, 1] = (s[:, 1] + s[:, 3] * step) % ch
        for (sx, sy, _, _), colour in zip(s, scene.colours, strict=True):
            cv2.circle(img, (int(sx), int(sy)), max(3, ch // 18), colour, -1)
        img[self.hud > 0] = (235, 235, 235)
        for a, b in self.flashes:
            if a <= t < b:
                k = 1.0 - 0.5 * (t - a) / max(b - a, 1e-6)
                img = (img * (1 - 0.8 * k) + 255 * 0.8 * k).astype(np.uint8)
        return img


class _Sound:
    """Ambient bed, footsteps, hum; loud decaying bangs at the planned `loud` events."""

    def __init__(self, plan: ClipPlan) -> None:
        self.rate = plan.audio_rate
        self.rng = np.random.default_rng(plan.seed + 2)
        self.louds = [e.start_s for e in plan.events or () if e.kind == "loud"]
        self.fast = [(e.start_s, e.end_s) for e in plan.events or () if e.kind == "fast_motion"]
        self.lp = 0.0

    def chunk(self, start: int, n: int) -> np.ndarray:
        t = (start + np.arange(n)) / self.rate
        white = self.rng.normal(0, 1, n)
        # One-pole low-pass, a soft rumble, not hiss: bed[i] = 0.985 bed[i-1] + 0.015 white[i], carried
        # across chunks (the same sums as a Python loop, bit for bit, at a fifth of the time).
        bed, _ = lfilter([0.015], [1.0, -0.985], white, zi=[0.985 * self.lp])
        self.lp = float(bed[-1]) if n else self.lp
        out = 0.05 * bed + 0.004 * np.sin(2 * math.pi * 60 * t)
        step_phase = (t * 2.0) % 1.0  # footsteps twice a second
        out += 0.02 * np.exp(-step_phase * 60) * self.rng.normal(0, 1, n)
        for a, b in self.fast:
            m = (t >= a) & (t < b)
            out[m] += 0.05 * white[m]
        for at in self.louds:
            dt = t - at
            m = (dt >= 0) & (dt < 0.6)
            if m.any():
                env = np.exp(-dt[m] * 9.0)
                out[m] += 0.85 * env * np.clip(self.rng.normal(0, 1, int(m.sum())), -1.5, 1.5) / 1.5
        return np.clip(out, -1.0, 1.0).astype(np.float32)


def write_clip(path: Path, plan: ClipPlan, *, preset: str = "superfast", crf: int = 21) -> PlantedTimeline:
    """Write the clip atomically (temp file, rename) and return what was planted in it."""
    if plan.width % 2 or plan.height % 2 or plan.width <= 0 or plan.height <= 0:
        raise ValueError(f"clip size {plan.width}x{plan.height} must be positive and even (yuv420p)")
    if plan.cut_times_s is None or plan.events is None:
        plan = plan_clip(plan.duration_s, plan.fps, plan.seed, **_explicit(plan))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    n_frames = round(plan.duration_s * plan.fps)
    painter = _Painter(plan, *_canvas_size(plan))
    # One scaler for the whole clip: `VideoFrame.reformat` sets up a new one (filters, slice threads)
    # for every frame, which took more time than the scaling itself (1.26 against 0.52 ms a 720p frame).
    upscale = VideoReformatter()
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = _add_video(container, plan, preset, crf)
        audio = _ClipAudio(container, plan) if plan.has_audio else None
        previous_scene = 0
        for i in range(n_frames):
            small = painter.frame(i / plan.fps)
            frame = upscale.reformat(
                av.VideoFrame.from_ndarray(small, format="rgb24"),
                width=plan.width,
                height=plan.height,
                format="yuv420p",
                interpolation="BILINEAR",
            )
            frame.pts = i
            scene = painter.scene_index(i / plan.fps)
            if scene != previous_scene:  # a scene's first frame: IDR, where a scene-cut detector puts it
                frame.pict_type = PictureType.I
            previous_scene = scene
            container.mux(video.encode(frame))
            if audio is not None:  # keep audio up to the video's clock, frame by frame
                audio.fill_to(round((i + 1) / plan.fps * plan.audio_rate), last=i == n_frames - 1)
        container.mux(video.encode(None))
        if audio is not None:
            audio.flush()
    tmp.replace(path)
    assert plan.cut_times_s is not None and plan.events is not None
    return PlantedTimeline(
        duration_s=n_frames / plan.fps,
        fps=plan.fps,
        width=plan.width,
        height=plan.height,
        cut_times_s=plan.cut_times_s,
        events=plan.events,
        calm_spans_s=_calm_spans(plan.duration_s, plan.events),
        has_audio=plan.has_audio,
    )


def _canvas_size(plan: ClipPlan) -> tuple[int, int]:
    """The painter's (width, height): CANVAS_WIDTH wide (narrower for portrait), the clip's aspect."""
    cw = (
        CANVAS_WIDTH
        if plan.width >= plan.height
        else max(2, round(CANVAS_WIDTH * plan.width / plan.height / 2) * 2)
    )
    ch = max(2, round(cw * plan.height / plan.width / 2) * 2)
    return cw, ch


def _add_video(container: OutputContainer, plan: ClipPlan, preset: str, crf: int) -> VideoStream:
    """The H.264 stream: the clip's size and rate, a GOP of two seconds, two B-frames, High profile.

    The encode is most of a generated clip's cost. superfast with the cheapest sub-pixel search
    (subme=0) costs 15–35 % less CPU than plain superfast at the same size (1080p, measured in CPU
    time); ultrafast would halve it, but without deblocking and adaptive quantisation its noise reads as
    motion, unevenly at 30 and 60 fps (test_motion_reads_the_same_at_30_and_60_fps fails). The scenes
    are planned, so `write_clip` sends each one's first frame as an IDR picture (`forced-idr`) and x264's
    own scene-cut detection and adaptive B-frame placement, which analyse every frame at low resolution
    first, are off (scenecut=0, b-adapt=0): 12–20 % less encode CPU at 720p (README, "Two commands");
    the keyframes land on the planned cuts, where the re-upload fingerprint looks for them, and no
    longer on flashes.
    """
    video = container.add_stream("libx264", rate=plan.fps)
    video.width, video.height, video.pix_fmt = plan.width, plan.height, "yuv420p"
    video.time_base = Fraction(1, plan.fps)
    video.codec_context.thread_type = "FRAME"
    video.options = {
        "crf": str(crf),
        "preset": preset,
        "g": str(2 * plan.fps),
        "bf": "2",
        "profile": "high",
        "forced-idr": "1",
        "x264-params": "subme=0:scenecut=0:b-adapt=0",
    }
    return video


class _ClipAudio:
    """The AAC stream, fed from `_Sound` in AUDIO_FRAME chunks as the video's clock advances."""

    def __init__(self, container: OutputContainer, plan: ClipPlan) -> None:
        layout = "mono" if plan.audio_channels == 1 else "stereo"
        # FFmpeg's fast AAC coder: a quarter of the default (twoloop) coder's CPU, and the audio encode
        # was a sixth of a generated clip's time. These clips stand in for uploads, which come from
        # every kind of encoder; the montage's own soundtrack keeps twoloop (`mux.encode_soundtrack`).
        self.stream = container.add_stream(
            "aac", rate=plan.audio_rate, layout=layout, options={"aac_coder": "fast"}
        )
        self.stream.bit_rate = 160_000
        self.container, self.plan = container, plan
        self.sound = _Sound(plan)
        self.samples_done = 0

    def fill_to(self, want: int, last: bool) -> None:
        """Encode whole chunks up to sample `want`; on the `last` video frame, the remainder too."""
        plan = self.plan
        while self.samples_done + AUDIO_FRAME <= want or (last and self.samples_done < want):
            n = min(AUDIO_FRAME, want - self.samples_done)
            mono = self.sound.chunk(self.samples_done, n)
            data = np.tile(mono, (plan.audio_channels, 1))
            aframe = av.AudioFrame.from_ndarray(data, format="fltp", layout=self.stream.layout.name)
            aframe.sample_rate = plan.audio_rate
            aframe.pts = self.samples_done
            self.container.mux(self.stream.encode(aframe))
            self.samples_done += n

    def flush(self) -> None:
        self.container.mux(self.stream.encode(None))


def _explicit(plan: ClipPlan) -> dict[str, Any]:
    return {
        k: getattr(plan, k)
        for k in (
            "width",
            "height",
            "has_audio",
            "audio_channels",
            "audio_rate",
            "cut_times_s",
            "events",
            "calm",
        )
    }
