"""The render check's black/frozen detector on encoded H.264: slow motion is not a freeze, a held picture
and a black stretch are; the renderer, which measures its frames while encoding them instead of decoding
the file again, flags the same defects on the same files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from montage_pipeline.media.render import (
    EncodeSettings,
    OutputSpec,
    RenderReport,
    RenderSpan,
    encoded_spec,
    render,
)
from montage_pipeline.media.specs import FROZEN_DIFF, _small_luma, _still_spans, spec_failures

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


def _held_then_black(texture: np.ndarray) -> Callable[[int], np.ndarray]:
    """A fast pan, the picture at 1.0 s held until 2.5 s, black from 3.5 s to 5.0 s."""
    black = np.full((H, W), 16, np.uint8)

    def picture(i: int) -> np.ndarray:
        t = i / FPS
        if 1.0 <= t < 2.5:
            return _pan(texture, FPS)
        if 3.5 <= t < 5.0:
            return black
        return _pan(texture, i, px_per_second=60)

    return picture


def test_a_held_picture_and_a_black_stretch_are_found_where_they_are(
    texture: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "held.mp4"
    _write(path, 6.0, _held_then_black(texture))
    spans = _still_spans(path)
    assert len(spans) == 2, spans
    (held_a, held_b), (black_a, black_b) = spans
    assert held_a == pytest.approx(1.0, abs=0.1) and held_b == pytest.approx(2.5, abs=0.1)
    assert black_a == pytest.approx(3.5, abs=0.1) and black_b == pytest.approx(5.0, abs=0.1)


def _render(source: Path, out: Path, fps: int, intro_s: float = 0.5) -> RenderReport:
    """The whole source as one span after a title card, at the source's size."""
    span = RenderSpan(source, 0.0, 6.0, intro_s, intro_s + 6.0, credit="")
    (report,) = render(
        [span], [OutputSpec(out, W, H, credits=False)], EncodeSettings(fps=fps), title="T", intro_s=intro_s
    )
    return report


def test_the_renderer_flags_while_encoding_the_stills_a_decode_of_its_file_finds(
    texture: np.ndarray, tmp_path: Path
) -> None:
    held = tmp_path / "held.mp4"
    _write(held, 6.0, _held_then_black(texture))
    report = _render(held, tmp_path / "held_out.mp4", fps=30)
    measured_while_encoding, decoded_after = report.still_spans, _still_spans(report.path)
    assert len(measured_while_encoding) == len(decoded_after) == 2, (measured_while_encoding, decoded_after)
    for ours, theirs, planted in zip(
        measured_while_encoding, decoded_after, [(1.5, 3.0), (4.0, 5.5)], strict=True
    ):
        assert ours == pytest.approx(theirs, abs=0.1)
        assert ours == pytest.approx(planted, abs=0.1)
    failures = spec_failures(encoded_spec(report), width=W, height=H, allowed_stills=((0.0, 0.7),))
    assert sum("black or frozen" in f for f in failures) == 2, failures

    pan = tmp_path / "pan.mp4"
    _write(pan, 6.0, lambda i: _pan(texture, i))  # slow, but never still
    clean = _render(pan, tmp_path / "pan_out.mp4", fps=30)
    assert clean.still_spans == _still_spans(clean.path) == ()
    assert spec_failures(encoded_spec(clean), width=W, height=H, allowed_stills=((0.0, 0.7),)) == []


def test_the_file_part_of_the_check_still_reads_the_file(texture: np.ndarray, tmp_path: Path) -> None:
    pan = tmp_path / "pan.mp4"
    _write(pan, 6.0, lambda i: _pan(texture, i, px_per_second=60))
    slow = _render(pan, tmp_path / "slow.mp4", fps=20)
    assert "frame rate 20 fps" in spec_failures(encoded_spec(slow), width=W, height=H)

    good = _render(pan, tmp_path / "good.mp4", fps=30)
    remuxed = tmp_path / "not_faststart.mp4"  # the same packets, the index written after them
    with av.open(str(good.path)) as src, av.open(str(remuxed), "w", format="mp4") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    failures = spec_failures(encoded_spec(replace(good, path=remuxed)), width=W, height=H)
    assert "moov after mdat: not faststart" in failures
