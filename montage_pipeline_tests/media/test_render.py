"""Rendered montages, decoded and checked the way a viewer (and a platform) would."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.media.analysis import analyze_clip
from montage_pipeline.media.reframe import ActionTrack
from montage_pipeline.media.render import (
    EncodeSettings,
    OutputSpec,
    RenderSpan,
    _decode_span,
    _DecodeAhead,
    render,
)
from montage_pipeline.media.specs import inspect_video, spec_failures
from montage_pipeline.media.synth import plan_clip, write_clip

FPS = 30
INTRO = 1.0


def _frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in indices:
                out[i] = f.to_ndarray(format="rgb24").astype(np.float64)
    return out


def _source_frame(path: Path, t: float, size: tuple[int, int]) -> np.ndarray:
    with av.open(str(path)) as c:
        best = None
        for f in c.decode(video=0):
            if f.time is not None and f.time <= t + 1e-6:
                best = f
            else:
                break
        assert best is not None
        return best.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray().astype(np.float64)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("render_src")
    specs = {
        "wide30": plan_clip(6.0, 30, seed=61, width=320, height=180),
        "wide60": plan_clip(6.0, 60, seed=62, width=320, height=180),
        "four_three": plan_clip(6.0, 30, seed=63, width=240, height=180),
        "portrait": plan_clip(6.0, 30, seed=64, width=180, height=320),
    }
    paths = {}
    for name, plan in specs.items():
        paths[name] = d / f"{name}.mp4"
        write_clip(paths[name], plan)
    return paths


def _spans(sources: dict[str, Path], names: list[str], length: float = 2.0) -> list[RenderSpan]:
    spans, m = [], INTRO
    for i, name in enumerate(names):
        spans.append(
            RenderSpan(sources[name], 1.0 + 0.3 * i, 1.0 + 0.3 * i + length, m, m + length, f"@p{i} · Game")
        )
        m += length
    return spans


def test_landscape_montage_matches_its_sources_and_the_spec(sources: dict[str, Path], tmp_path: Path) -> None:
    spans = _spans(sources, ["wide30", "wide60", "four_three", "portrait"])
    out = tmp_path / "land.mp4"
    (report,) = render(
        spans,
        [OutputSpec(out, 640, 360)],
        EncodeSettings(fps=FPS),
        title="Weekly Highlights - X",
        intro_s=INTRO,
    )
    total = spans[-1].montage_out_s
    assert report.frames == round(total * FPS)
    spec = inspect_video(out)
    assert (spec.width, spec.height, spec.fps, spec.constant_fps) == (640, 360, 30.0, True)
    assert spec.duration_s == pytest.approx(total, abs=1 / FPS)
    assert (
        spec_failures(
            spec, width=640, height=360, target_duration_s=total, allowed_stills=((0, INTRO + 0.2),)
        )
        == []
    )

    firsts = report.span_first_frames
    assert firsts == [round(s.montage_in_s * FPS) for s in spans]
    decoded = _frames(out, {0, *firsts})
    for span, k in zip(spans[:2], firsts[:2], strict=True):  # 16:9 sources: the first frame is the in-point's
        src = _source_frame(span.source_path, span.source_in_s, (640, 360))
        top = slice(0, 200)  # above the credit plate
        assert _psnr(decoded[k][top], src[top]) >= 25, span.source_path.name
    title = decoded[0]
    assert title[150:210, 100:540].max() > 230 and np.median(title) < 90  # white text on a dark card
    bare = _source_frame(spans[0].source_path, spans[0].source_in_s, (640, 360))
    plate = (slice(290, 320), slice(30, 120))
    assert np.abs(decoded[firsts[0]][plate] - bare[plate]).mean() > 25  # the credit plate is over the picture


def test_portrait_follow_keeps_the_action_in_frame(tmp_path: Path) -> None:
    src = tmp_path / "offcentre.mp4"
    with av.open(str(src), "w", format="mp4") as c:  # a bright square circling in the right third
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        s.time_base = Fraction(1, 30)
        for i in range(120):
            img = np.full((360, 640, 3), 50, np.uint8)
            x = int(480 + 60 * np.cos(i / 10))
            img[150:210, x - 30 : x + 30] = 250
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    t = analyze_clip(src, skip_nonref=False).tracks
    track = ActionTrack(t.frame_times_s, t.action_x, t.action_spread)
    ratios = {}
    for layout in ("follow", "center"):
        out = tmp_path / f"{layout}.mp4"
        span = RenderSpan(src, 0.5, 3.5, 0.0, 3.0, "", action=track)
        render(
            [span],
            [OutputSpec(out, 180, 320, layout=layout, credits=False)],
            EncodeSettings(fps=30),
            title="t",
            intro_s=0.0,
        )
        with av.open(str(out)) as c:
            bright = [float((f.to_ndarray(format="gray") > 200).mean()) for f in c.decode(video=0)]
        ratios[layout] = float(np.mean([b > 0.02 for b in bright]))
    assert ratios["follow"] >= 0.9
    assert ratios["follow"] > ratios["center"] + 0.3


def test_vfr_and_rotated_sources_become_constant_rate_upright_output(tmp_path: Path) -> None:
    src = tmp_path / "vfr_rot.mp4"
    with av.open(str(src), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        s.set_display_rotation(90)
        t_ms = 0
        for i in range(90):
            img = np.zeros((180, 320, 3), np.uint8)
            img[:, :40] = 255  # a white band on the left of the stored picture
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = t_ms
            t_ms += 20 if i % 2 else 47
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    with av.open(str(src)) as c:
        rotation = next(c.decode(video=0)).rotation
    out = tmp_path / "out.mp4"
    span = RenderSpan(src, 0.2, 2.2, 0.0, 2.0, "", rotation=round(rotation) % 360)
    render([span], [OutputSpec(out, 640, 360, credits=False)], EncodeSettings(fps=30), title="t", intro_s=0.0)
    spec = inspect_video(out)
    assert spec.constant_fps and spec.fps == 30.0 and spec.duration_s == pytest.approx(2.0, abs=1 / 30)
    picture = _frames(out, {10})[10]
    rows_bright = (picture.mean(axis=2) > 200).mean(axis=1)
    # Rotated upright, the stored left band runs across the picture (a horizontal band), not down it.
    assert rows_bright.max() > 0.2 and (rows_bright > 0.2).mean() < 0.5


def test_spec_failures_name_what_a_platform_would_reject(sources: dict[str, Path]) -> None:
    spec = inspect_video(sources["wide30"])  # a synth upload: GOP of 2 s and an edit list
    failures = spec_failures(spec, width=1920, height=1080, target_duration_s=20.0)
    text = "; ".join(failures)
    assert "size 320x180" in text and "GOP of" in text and "duration" in text


def test_a_dissolve_blends_the_previous_clip_into_the_next(sources: dict[str, Path], tmp_path: Path) -> None:
    a, b = sources["wide30"], sources["wide60"]
    spans = [
        RenderSpan(a, 1.0, 3.0, 0.0, 2.0, ""),
        RenderSpan(b, 2.0, 4.0, 2.0, 4.0, "", transition_in="dissolve", transition_s=0.5),
    ]
    out = tmp_path / "dissolve.mp4"
    render(spans, [OutputSpec(out, 320, 180, credits=False)], EncodeSettings(fps=FPS), title="t", intro_s=0.0)
    mid = 60 + 7  # 7 of the 15 transition frames into the second span: about half and half
    frame = _frames(out, {mid, 60 + 20})
    alpha = 8 / 16
    outgoing = _source_frame(a, 3.0 + 7 / FPS, (320, 180))
    incoming = _source_frame(b, 2.0 + 7 / FPS, (320, 180))
    blend = alpha * incoming + (1 - alpha) * outgoing
    assert _psnr(frame[mid], blend) >= 25
    assert _psnr(frame[mid], incoming) < _psnr(frame[mid], blend) - 3
    after = _source_frame(b, 2.0 + 20 / FPS, (320, 180))
    assert _psnr(frame[60 + 20], after) >= 25  # after the transition: the new clip alone


def test_a_source_that_breaks_mid_render_leaves_no_file_behind(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    """The encoders run on threads of their own: a failure while the render decodes stops them all, and
    neither the outputs nor their partial files are left for a later step to mistake for a render."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(sources["wide30"].read_bytes()[:2000])  # the header's first bytes, no pictures
    spans = _spans({**sources, "broken": broken}, ["wide30", "broken"])
    outputs = [
        OutputSpec(tmp_path / "out" / "land.mp4", 320, 180),
        OutputSpec(tmp_path / "out" / "port.mp4", 180, 320),
    ]
    with pytest.raises((av.error.FFmpegError, ValueError)):
        render(spans, outputs, EncodeSettings(fps=FPS), title="Weekly Highlights - X", intro_s=INTRO)
    assert list((tmp_path / "out").iterdir()) == []


def _decoded(frames: Iterator[tuple[float, av.VideoFrame]], limit: int | None = None) -> list[tuple]:
    """(time, picture bytes) of the frames, the first `limit` of them."""
    return [(t, bytes(f.planes[0])) for t, f in itertools.islice(frames, limit)]


def test_spans_decoded_ahead_are_the_frames_decoded_in_line(sources: dict[str, Path]) -> None:
    """The render's decoder runs ahead on a thread of its own; every span still gets exactly the frames a
    decode of its own gives, in order, also the span after one the render left before its end."""
    spans = _spans(sources, ["wide30", "wide60", "wide30", "four_three"], length=1.5)
    expected = [_decoded(_decode_span(span)) for span in spans]
    assert all(len(frames) > 40 for frames in expected)
    ahead = _DecodeAhead(spans, threads=1)
    try:
        assert _decoded(ahead.frames(0)) == expected[0]
        left_early = ahead.frames(1)
        assert _decoded(left_early, 5) == expected[1][:5]
        left_early.close()  # the render is done with span 1 after five frames
        assert _decoded(ahead.frames(2)) == expected[2]
        assert _decoded(ahead.frames(3)) == expected[3]
    finally:
        ahead.close()
    assert not ahead._thread.is_alive()


def test_the_decoder_ahead_holds_a_few_frames_and_stops_on_close(sources: dict[str, Path]) -> None:
    """Memory stays bounded while the render's thread is busy elsewhere: the decoder stops DEPTH frames
    ahead and does not start the next span; closing it mid-span ends its thread."""
    spans = _spans(sources, ["wide60", "wide30"], length=2.0)
    ahead = _DecodeAhead(spans, threads=1)
    try:
        deadline = time.monotonic() + 10
        while ahead._queues[0].qsize() < _DecodeAhead.DEPTH and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # time enough to decode past the bound, were there none
        assert ahead._queues[0].qsize() == _DecodeAhead.DEPTH
        assert ahead._queues[1].qsize() == 0
    finally:
        ahead.close()
    assert not ahead._thread.is_alive()
    assert all(q.qsize() == 0 for q in ahead._queues)
