"""One decode pass per clip: scene cuts, motion, flashes, where the action is, loudness and onsets.

Everything the later stages need is computed from a single low-resolution pass: the decoder hands
frames to libswscale, which shrinks them to `analysis_width` in C (area filter: no aliasing, so no
false cuts), and only those small frames reach numpy and PySceneDetect. Audio is decoded from the same
demux pass, resampled to 16 kHz mono and reduced on the fly to a loudness and an onset value per step.
Nothing of the clip is held but per-frame scalars, so memory does not grow with resolution.

The decode does only what a 320-px view needs: non-reference frames are skipped (`skip_nonref`) and so
is H.264's in-loop deblocking filter (`skip_loop_filter`, ~20 % of the decode at 1080p). Without the
filter, blocking edges that the encoder smoothed stay in the decoded references and drift within a GOP;
averaged down to 320 px little of it shows: on 1080p test clips 26 of 27 cuts stay on the same frame
and a frame's mean brightness moves by at most 0.003, and on real gameplay the montage's quality does not
change (`benchmarks/bench_analysis.py` prints the cuts and tracks both ways; README, "The whole week").
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import itertools
import json
import logging
import multiprocessing
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from montage_pipeline.media.audio_batches import BatchedResampler
from montage_pipeline.media.cores import usable_cores

log = logging.getLogger(__name__)

ANALYSIS_VERSION = 4
AUDIO_RATE = 16_000
AUDIO_STEP_S = 0.05
FFT_SIZE = 1024
LOUDNESS_FLOOR_DB = -100.0
FLASH_WINDOW_S = 0.5
MOTION_NOISE = 2.0 / 255  # below this a column's change is compression noise, not motion
MOTION_FRAME_S = 1 / 30  # motion is the change per 1/30 s whatever the frame rate: 60 fps and VFR compare


@dataclass(frozen=True, slots=True)
class Scene:
    start_s: float
    end_s: float
    cut_score: float  # the detector's content score at the cut that starts the scene (0 for the first)


@dataclass(frozen=True, slots=True)
class FeatureTracks:
    frame_times_s: np.ndarray
    motion: np.ndarray
    brightness: np.ndarray
    flash: np.ndarray
    redness: np.ndarray  # mean red-difference chroma (Cr) of the frame, 0..1 (0.5 neutral)
    action_x: np.ndarray
    action_spread: np.ndarray
    audio_step_s: float
    loudness_db: np.ndarray
    onset: np.ndarray  # spectral flux per audio step, not normalised: comparable across clips


# What save() writes: scalar fields in a JSON header, feature tracks as arrays.
HEADER_FIELDS = ("version", "duration_s", "fps", "width", "height", "has_audio", "frames_decoded", "seconds")
TRACK_ARRAYS = (
    "frame_times_s",
    "motion",
    "brightness",
    "flash",
    "redness",
    "action_x",
    "action_spread",
    "loudness_db",
    "onset",
)


@dataclass(frozen=True, slots=True)
class ClipAnalysis:
    version: int
    duration_s: float
    fps: float
    width: int
    height: int
    has_audio: bool
    scenes: tuple[Scene, ...]
    tracks: FeatureTracks
    frames_decoded: int
    seconds: float

    def save(self, path: Path) -> None:
        """A compact .npz (arrays plus a JSON header), written atomically."""
        header: dict[str, Any] = {k: getattr(self, k) for k in HEADER_FIELDS}
        header["scenes"] = [asdict(s) for s in self.scenes]
        header["audio_step_s"] = self.tracks.audio_step_s
        arrays = {name: getattr(self.tracks, name) for name in TRACK_ARRAYS}
        tmp = path.with_name(f".{path.name}.partial")
        with tmp.open("wb") as fh:
            np.savez_compressed(
                fh, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays
            )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ClipAnalysis:
        with np.load(path) as data:
            header = json.loads(bytes(data["header"]).decode())
            if header["version"] != ANALYSIS_VERSION:
                raise ValueError(f"analysis version {header['version']} is not {ANALYSIS_VERSION}")
            tracks = FeatureTracks(
                audio_step_s=float(header["audio_step_s"]), **{n: data[n] for n in TRACK_ARRAYS}
            )
        scenes = tuple(Scene(**scene) for scene in header["scenes"])
        return cls(scenes=scenes, tracks=tracks, **{k: header[k] for k in HEADER_FIELDS})


class _AudioReducer:
    """Turns a stream of mono PCM chunks into per-step RMS loudness and spectral-flux onsets."""

    def __init__(self) -> None:
        self.hop = round(AUDIO_STEP_S * AUDIO_RATE)
        self.window = np.hanning(FFT_SIZE).astype(np.float32)
        self.pending = np.zeros(0, dtype=np.float32)
        self.history = np.zeros(FFT_SIZE, dtype=np.float32)
        self.prev_spectrum: np.ndarray | None = None
        self.loudness: list[float] = []
        self.flux: list[float] = []

    def push(self, pcm: np.ndarray) -> None:
        self.pending = np.concatenate([self.pending, pcm.astype(np.float32, copy=False)])
        while len(self.pending) >= self.hop:
            step, self.pending = self.pending[: self.hop], self.pending[self.hop :]
            rms = float(np.sqrt(np.mean(step.astype(np.float64) ** 2)))
            self.loudness.append(max(LOUDNESS_FLOOR_DB, 20 * np.log10(rms + 1e-12)))
            self.history = np.concatenate([self.history[self.hop :], step])[-FFT_SIZE:]
            spectrum = np.sqrt(np.abs(np.fft.rfft(self.history * self.window)))  # mild compression
            if self.prev_spectrum is None:
                self.flux.append(0.0)
            else:
                self.flux.append(float(np.maximum(spectrum - self.prev_spectrum, 0).sum()))
            self.prev_spectrum = spectrum


def jump_above_recent(times: np.ndarray, values: np.ndarray, window_s: float) -> np.ndarray:
    """How far each sample rises above the median of the preceding `window_s` seconds (0 if it does not)."""
    out = np.zeros(len(values), dtype=np.float32)
    start = 0
    for i in range(len(values)):
        while times[start] < times[i] - window_s:
            start += 1
        if i > start:
            out[i] = max(0.0, float(values[i]) - float(np.median(values[start:i])))
    return out


def _flash_track(times: np.ndarray, brightness: np.ndarray) -> np.ndarray:
    """How far each frame's brightness jumps above the median of the preceding half second."""
    return jump_above_recent(times, brightness, FLASH_WINDOW_S)


def _is_flash(cut: float, times: np.ndarray, brightness: np.ndarray, flash: np.ndarray) -> bool:
    """A "cut" that is really a flash: brightness jumps, then falls back to where it was.

    Content detectors fire on muzzle flashes and explosions; a real cut changes the picture for good.
    """
    i = int(np.searchsorted(times, cut - 1e-6))
    if i >= len(times) or flash[i] < 0.08:
        return False
    before = brightness[(times >= cut - FLASH_WINDOW_S) & (times < cut)]
    after = brightness[(times >= cut + 0.3) & (times < cut + 0.7)]
    return bool(before.size and after.size and abs(float(after.mean()) - float(before.mean())) < 0.06)


PLANAR_420 = frozenset({"yuv420p", "yuvj420p"})


def plane_view(plane: Any) -> np.ndarray:
    """A zero-copy view of one picture plane (rows are `line_size` long; the tail is padding)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def area_resize(plane: np.ndarray, w: int, h: int) -> np.ndarray:
    """`plane` area-averaged to w×h; when the plane is an even multiple of the target it is first halved.

    OpenCV's area filter has a fast path for an exact halving: halving, then the rest, is 2.8× faster at
    1080p and 7× at 720p than one pass. Averages of whole blocks compose, so the result differs from one
    pass only by the rounding in between (at most one level); other ratios take the one pass.
    """
    import cv2  # see media.LAZY_LIBRARIES

    rows, cols = plane.shape[:2]
    if cols % (2 * w) == 0 and rows % (2 * h) == 0:
        plane = cv2.resize(plane, (cols // 2, rows // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(plane, (w, h), interpolation=cv2.INTER_AREA)


def _small_frame(frame: av.VideoFrame, w: int, h: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The frame shrunk to w×h as BGR (for the scene detector), its luma plane, and its mean Cr (0..1).

    Mean Cr is the red tint that games lay over the picture when the player is hurt or dies.

    For 4:2:0 sources the planes are area-averaged straight from the decoder's buffers and converted to
    BGR only at the small size: 1.4× faster than a full-size swscale conversion (measured at 1080p).
    """
    import cv2  # see media.LAZY_LIBRARIES

    if frame.format.name in PLANAR_420 and w % 2 == 0 and h % 2 == 0:
        y, u, v = (plane_view(p) for p in frame.planes)
        ys = area_resize(y, w, h)
        us = area_resize(u, w // 2, h // 2)
        vs = area_resize(v, w // 2, h // 2)
        i420 = np.concatenate([ys.ravel(), us.ravel(), vs.ravel()]).reshape(h * 3 // 2, w)
        return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), ys, float(vs.mean()) / 255
    bgr = frame.reformat(width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()
    ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    return bgr, np.ascontiguousarray(ycrcb[:, :, 0]), float(ycrcb[:, :, 1].mean()) / 255


def _video_size(width: int, height: int, rotation: int, analysis_width: int) -> tuple[int, int]:
    w, h = (height, width) if rotation in (90, 270) else (width, height)
    scale = analysis_width / max(w, 1)
    return analysis_width, max(2, round(h * scale / 2) * 2)


def _demux(container: av.container.InputContainer, streams: list[Any]) -> Iterator[Any]:
    for packet in container.demux(streams):  # ends with empty packets that drain the decoders
        yield from packet.decode()


class _MotionTracks:
    """Per-frame motion, brightness, redness and where the motion is across the picture (its column
    centre and spread), from each frame's small luma plane and the previous one."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.motion: list[float] = []
        self.brightness: list[float] = []
        self.redness: list[float] = []
        self.action_x: list[float] = []
        self.spread: list[float] = []
        self.prev: np.ndarray | None = None
        self.prev_t = 0.0

    def add(self, t: float, gray8: np.ndarray, cr: float) -> None:
        gray = gray8.astype(np.float32) / 255
        if self.prev is None:
            diff = np.zeros_like(gray)
            gap = 1.0
        else:
            diff = np.abs(gray - self.prev)
            # Per 1/30 s: skipped (non-reference) frames widen the gap, 60 fps and VFR narrow it.
            gap = max(0.25, (t - self.prev_t) / MOTION_FRAME_S)
        columns = np.maximum(diff.mean(axis=0) - MOTION_NOISE, 0.0)
        energy = float(columns.sum())
        xs = (np.arange(len(columns)) + 0.5) / len(columns)
        if energy > 1e-6:
            centre = float((xs * columns).sum() / energy)
            self.action_x.append(centre)
            self.spread.append(float(np.sqrt(((xs - centre) ** 2 * columns).sum() / energy)))
        else:
            self.action_x.append(0.5)
            self.spread.append(0.0)
        self.times.append(t)
        self.motion.append(float(diff.mean()) / gap)
        self.brightness.append(float(gray.mean()))
        self.redness.append(cr)
        self.prev, self.prev_t = gray, t


class _CutTracker:
    """The scene detector fed frame by frame: the cuts it reports and its score at each frame."""

    def __init__(self, detector: str, fps: float) -> None:
        from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode  # media.LAZY_LIBRARIES

        self.detector = AdaptiveDetector() if detector == "adaptive" else ContentDetector()
        self.timecode = FrameTimecode
        self.fps = fps
        self.cuts: list[float] = []
        self.scores: dict[float, float] = {}

    def add(self, t: float, bgr: np.ndarray) -> None:
        for cut in self.detector.process_frame(self.timecode(t, self.fps), bgr):
            self.cuts.append(cut.seconds)
        score = getattr(self.detector, "_frame_score", None)
        if score is not None:
            self.scores[round(t, 4)] = float(score)


class _Shrinker:
    """Each frame at the analysis size, upright: the first frame's rotation decides the orientation."""

    def __init__(self, width: int, height: int, analysis_width: int) -> None:
        self.width, self.height, self.analysis_width = width, height, analysis_width
        self.size: tuple[int, int] | None = None
        self.rotation = 0

    def small(self, frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, float]:
        if self.size is None:
            self.rotation = round(frame.rotation / 90) * 90 % 360
            self.size = _video_size(self.width, self.height, self.rotation, self.analysis_width)
        size, rotation = self.size, self.rotation
        w, h = size if rotation in (0, 180) else (size[1], size[0])
        bgr, gray8, cr = _small_frame(frame, w, h)
        if rotation:
            k = {90: -1, 180: 2, 270: 1}[rotation]
            bgr, gray8 = np.ascontiguousarray(np.rot90(bgr, k)), np.ascontiguousarray(np.rot90(gray8, k))
        return bgr, gray8, cr


def _stream_times(video: Any) -> tuple[float, float]:
    """The video stream's own duration and start time in seconds (0 when it does not say)."""
    duration = float(video.duration * video.time_base) if video.duration and video.time_base else 0.0
    start = (
        float(video.start_time * video.time_base) if video.start_time is not None and video.time_base else 0.0
    )
    return duration, start


def analyze_clip(
    path: Path,
    *,
    analysis_width: int = 320,
    detector: str = "adaptive",
    skip_nonref: bool = True,
    skip_loop_filter: bool = True,
    thread_type: str = "AUTO",
) -> ClipAnalysis:
    """Analyse one clip in one decode pass (see the module docstring)."""
    started = time.perf_counter()
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.thread_type = thread_type
        if skip_nonref:
            video.codec_context.skip_frame = "NONREF"
        if skip_loop_filter:
            video.codec_context.options = {"skip_loop_filter": "all"}
        audio = container.streams.audio[0] if container.streams.audio else None
        fps = float(video.average_rate or video.guessed_rate or 30)
        # Skipped non-reference frames can include the last one: the stream's own duration is the truth.
        stream_duration, vstart = _stream_times(video)
        width, height = video.codec_context.width, video.codec_context.height
        resampler = BatchedResampler("flt", "mono", AUDIO_RATE)
        reducer = _AudioReducer()
        shrinker = _Shrinker(width, height, analysis_width)
        tracks = _MotionTracks()
        cuts = _CutTracker(detector, fps)
        streams = [video] + ([audio] if audio is not None else [])
        for frame in _demux(container, streams):
            if isinstance(frame, av.AudioFrame):
                for pcm in resampler.resample(frame):
                    reducer.push(pcm.reshape(-1))
                continue
            if frame.time is None:
                continue
            t = float(frame.time) - vstart
            bgr, gray8, cr = shrinker.small(frame)
            tracks.add(t, gray8, cr)
            cuts.add(t, bgr)
        for pcm in resampler.rest():
            reducer.push(pcm.reshape(-1))

    times = tracks.times
    duration = max((times[-1] + 1.0 / fps) if times else 0.0, stream_duration)
    t_arr = np.array(times, dtype=np.float64)
    b_arr = np.array(tracks.brightness, dtype=np.float32)
    flash = _flash_track(t_arr, b_arr)
    return ClipAnalysis(
        version=ANALYSIS_VERSION,
        duration_s=round(duration, 4),
        fps=fps,
        width=width,
        height=height,
        has_audio=audio is not None,
        scenes=_scenes(cuts, duration, t_arr, b_arr, flash),
        tracks=FeatureTracks(
            frame_times_s=t_arr,
            motion=np.array(tracks.motion, dtype=np.float32),
            brightness=b_arr,
            flash=flash,
            redness=np.array(tracks.redness, dtype=np.float32),
            action_x=np.array(tracks.action_x, dtype=np.float32),
            action_spread=np.array(tracks.spread, dtype=np.float32),
            audio_step_s=AUDIO_STEP_S,
            loudness_db=np.array(reducer.loudness, dtype=np.float32),
            onset=np.array(reducer.flux, dtype=np.float32),
        ),
        frames_decoded=len(times),
        seconds=round(time.perf_counter() - started, 3),
    )


def _scenes(
    cuts: _CutTracker, duration: float, times: np.ndarray, brightness: np.ndarray, flash: np.ndarray
) -> tuple[Scene, ...]:
    """The scenes between the detector's cuts, leaving out the cuts that were flashes."""
    real = [c for c in cuts.cuts if 0 < c < duration and not _is_flash(c, times, brightness, flash)]
    bounds = [0.0, *sorted(real), duration]
    return tuple(
        Scene(round(a, 4), round(b, 4), 0.0 if i == 0 else cuts.scores.get(round(a, 4), 0.0))
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    )


def _analyze_or_error(path: Path, kwargs: dict[str, Any]) -> ClipAnalysis | Exception:
    try:
        return analyze_clip(path, **kwargs)
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        return exc


def largest_first(paths: list[Path]) -> list[int]:
    """The indices of `paths`, the largest file first (a missing one last): the pool hands out work in
    this order, so the small clips fill in at the end instead of one core decoding a long clip alone.
    Bytes stand for decode time: they grow with pixels, frames and duration alike."""

    def size(i: int) -> int:
        try:
            return paths[i].stat().st_size
        except OSError:
            return -1  # its error is reported when the worker opens it

    return sorted(range(len(paths)), key=lambda i: (-size(i), i))


@contextlib.contextmanager
def _workers_without_main() -> Iterator[None]:
    """Workers started inside skip running the launching script.

    Python's multiprocessing runs the parent's `__main__` script again in every worker it starts, as
    `__mp_main__`, before the worker takes any work (`spawn.prepare`, from `__main__.__file__`). Launched
    as a script (`dagster asset materialize`, `make demo`, a script around `execute_in_process`), that is
    all of Dagster and the code location in each analysis worker: ~1.5 s of a 10-clip week's analysis on
    2 cores (`README`, "The whole week"). The workers run `_analyze_or_error` from this module and need
    nothing of `__main__`; a main described as the module `__main__` is never run again (as for
    `python -m dagster api execute_run`, how the daemon launches a run). The description is the process's
    own for the few milliseconds the workers take to start, then put back."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = spec


def iter_analyze_clips(
    paths: list[Path], *, workers: int = 2, **kwargs: Any
) -> Iterator[tuple[int, ClipAnalysis | Exception]]:
    """(index, analysis or exception) as each clip finishes, one process per core, the largest first.

    With several workers each decoder runs single-threaded: one process per core decodes more frames per
    second in total than frame threads in one process (measured 1.4× at 1080p60).
    """
    workers = max(1, min(workers, len(paths), usable_cores()))
    if multiprocessing.current_process().daemon:
        # A daemonic process may not start children: a step on a Celery worker's prefork pool. There
        # the parallelism is the workers'; this process decodes with frame threads instead.
        workers = 1
    if workers == 1:
        for i, path in enumerate(paths):
            yield i, _analyze_or_error(path, kwargs)
        return
    kwargs = {"thread_type": "NONE", **kwargs}  # overridable
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        with _workers_without_main():  # the workers start at the first submits
            futures = {pool.submit(_analyze_or_error, paths[i], kwargs): i for i in largest_first(paths)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def analyze_clips(paths: list[Path], *, workers: int = 2, **kwargs: Any) -> list[ClipAnalysis | Exception]:
    """Analyse clips in parallel; a failing clip yields its exception instead of failing the batch."""
    results: list[ClipAnalysis | Exception | None] = [None] * len(paths)
    for i, result in iter_analyze_clips(paths, workers=workers, **kwargs):
        results[i] = result
    return [r for r in results if r is not None]
