"""The render check's black/frozen detector on encoded H.264: slow motion is not a freeze, a held picture
and a black stretch are."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from montage_pipeline.media.specs import FROZEN_DIFF, _small_luma, _still_spans

FPS = 60
W, H = 320, 180


def _texture(seed: int) -> np.ndarray:
    """A smooth grey texture wider than the frame, so panning across it moves every pixel a little."""
    noise = np.random.default_rng(seed).random((H, W + 400))
    img = gaussian_filter(noise, 6)
    img = (img - img.min()) / np.ptp(img)
    return (40 + 170 * img).astype(np.uint8)


def _write(path: Path, seconds: float, picture: Callable[[int], np.ndarray]) -> None:
    """An H.264 file whose frame i shows `picture(i)` (an H×W luma image, shown in grey)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"crf": "20", "preset": "veryfast", "bf": "2"}
        for i in range(round(seconds * FPS)):
            rgb = np.repeat(picture(i)[:, :, None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _pan(texture: np.ndarray, i: int, px_per_second: float = 3.0) -> np.ndarray:
    """Frame i of a smooth pan: sub-pixel steps, interpolated, like a slow camera drift in a game."""
    x = i * px_per_second / FPS
    x0, f = int(x), x - int(x)
    view = (1 - f) * texture[:, x0 : x0 + W] + f * texture[:, x0 + 1 : x0 + 1 + W]
    return np.round(view).astype(np.uint8)


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    return _texture(3)


def test_a_slow_pan_is_not_a_freeze_even_when_each_frame_barely_moves(
    texture: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "pan.mp4"
    _write(path, 4.0, lambda i: _pan(texture, i))
    # The premise: frame to frame, this pan changes less than the threshold (a per-frame test would fire).
    with av.open(str(path)) as c:
        lumas = [_small_luma(f) for f in c.decode(video=0)]
    steps = [float(np.abs(b - a).mean()) for a, b in pairwise(lumas)]
    assert np.median(steps) < FROZEN_DIFF
    assert _still_spans(path) == ()


def test_a_held_picture_and_a_black_stretch_are_found_where_they_are(
    texture: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "held.mp4"
    black = np.full((H, W), 16, np.uint8)

    def picture(i: int) -> np.ndarray:
        t = i / FPS
        if 1.0 <= t < 2.5:
            return _pan(texture, FPS)  # the picture at 1.0 s, held for 1.5 s
        if 3.5 <= t < 5.0:
            return black
        return _pan(texture, i, px_per_second=60)

    _write(path, 6.0, picture)
    spans = _still_spans(path)
    assert len(spans) == 2, spans
    (held_a, held_b), (black_a, black_b) = spans
    assert held_a == pytest.approx(1.0, abs=0.1) and held_b == pytest.approx(2.5, abs=0.1)
    assert black_a == pytest.approx(3.5, abs=0.1) and black_b == pytest.approx(5.0, abs=0.1)
