"""Shared decoding: a short cut ridden on the main pass (`SubCut`) is the short rendered on its own —
the same frames (to within a frame's timing and encoder noise), length and spec — from one decode."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from montage_pipeline.media.render import (
    EncodeSettings,
    OutputSpec,
    RenderSpan,
    SubCut,
    encoded_spec,
    render,
)
from montage_pipeline.media.specs import spec_failures
from montage_pipeline.media.synth import plan_clip, write_clip

FPS = 30
SETTINGS = EncodeSettings(fps=FPS, crf=23, preset="veryfast")


def _spans(sources: list[Path]) -> tuple[list[RenderSpan], list[RenderSpan]]:
    """A main cut of three 3 s spans after a 1 s title, and a short of two spans inside the 1st and 3rd."""
    main, m = [], 1.0
    for i, src in enumerate(sources):
        main.append(RenderSpan(src, 1.0, 4.0, m, m + 3.0, f"@p{i} · Game", score=0.2 + 0.1 * i))
        m += 3.0
    short = [
        RenderSpan(sources[0], 1.5, 3.5, 0.5, 2.5, "@p0 · Game", score=0.2),
        RenderSpan(sources[2], 2.0, 4.0, 2.5, 4.5, "@p2 · Game", score=0.4),
    ]
    return main, short


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("subcut_src")
    paths = []
    for i in range(3):
        path = d / f"src{i}.mp4"
        write_clip(path, plan_clip(6.0, FPS, seed=700 + i, width=320, height=180))
        paths.append(path)
    return paths


def test_a_short_ridden_on_the_main_pass_is_the_short_rendered_alone(
    sources: list[Path], tmp_path: Path
) -> None:
    main, short = _spans(sources)
    ridden_spec = OutputSpec(tmp_path / "ridden.mp4", 180, 320, layout="center")
    sub = SubCut([ridden_spec], short, [0, 2], "Short", 0.5)
    main_spec = OutputSpec(tmp_path / "main.mp4", 320, 180)
    reports = render(main, [main_spec], SETTINGS, title="Main", intro_s=1.0, sub=sub)
    assert [r.path.name for r in reports] == ["main.mp4", "ridden.mp4"]
    alone_spec = OutputSpec(tmp_path / "alone.mp4", 180, 320, layout="center")
    (alone,) = render(short, [alone_spec], SETTINGS, title="Short", intro_s=0.5)

    ridden = reports[1]
    assert ridden.frames == alone.frames == round(4.5 * FPS)  # the title card plus two 2 s spans
    assert reports[0].frames == round(10.0 * FPS)  # the main cut is untouched by its rider
    for report in (ridden, reports[0]):
        spec = encoded_spec(report)
        assert spec_failures(spec, width=report.width, height=report.height, allowed_stills=((0, 1.2),)) == []
    a, b = _frames(ridden.path), _frames(alone.path)
    diffs = [float(np.abs(x - y).mean()) for x, y in zip(a, b, strict=True)]
    assert max(diffs) < 6.0, max(diffs)  # the same pictures: at most a frame's timing apart
    # and not the same as a short of other moments (the test can tell pictures apart)
    other = [
        RenderSpan(
            s.source_path,
            s.source_in_s + 1.5,
            s.source_out_s + 1.5,
            s.montage_in_s,
            s.montage_out_s,
            s.credit,
        )
        for s in short
    ]
    (shifted,) = render(
        other,
        [OutputSpec(tmp_path / "other.mp4", 180, 320, layout="center")],
        SETTINGS,
        title="Short",
        intro_s=0.5,
    )
    moved = [float(np.abs(x - y).mean()) for x, y in zip(a, _frames(shifted.path), strict=True)]
    assert max(moved) > max(diffs), (max(moved), max(diffs))
