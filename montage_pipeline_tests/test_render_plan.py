"""`highlights/render_plan.py`: which outputs, at which sizes, from which spans, in how many passes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from montage_pipeline.highlights.render_plan import (
    PORTRAIT_MAX_S,
    UNBRANDED,
    BrandingFileError,
    RenderOptions,
    plan_renders,
    planned_lengths,
)
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline_tests.test_publishing_parts import SPAN

BOTH = ["landscape_render", "portrait_render"]


def _spans(count: int, length_s: float, fps: float = 30) -> list[EditSpan]:
    """`count` spans of `length_s` seconds after a 2 s title card, each a whole number of beats."""
    return [
        replace(
            SPAN,
            order=i,
            clip_id=f"c{i}",
            source_in_s=0.0,
            source_out_s=length_s,
            montage_in_s=2.0 + i * length_s,
            montage_out_s=2.0 + (i + 1) * length_s,
            peak_montage_s=2.0 + i * length_s + 1.0,
            source_fps=fps,
        )
        for i in range(count)
    ]


def test_an_edit_within_the_shorts_limit_renders_both_outputs_in_one_pass(tmp_path: Path) -> None:
    spans = _spans(4, 8.0, fps=60)
    plan = plan_renders(spans, {}, BOTH, "T", RenderOptions(width_scale=1 / 6), tmp_path)
    assert [g.names for g in plan.groups] == [tuple(BOTH)]
    assert len(plan.groups[0].spans) == 4
    sizes = {n: (o.width, o.height, o.layout) for n, o in plan.outputs.items()}
    assert sizes == {"landscape_render": (320, 180, "fit"), "portrait_render": (180, 320, "follow")}
    assert plan.outputs["landscape_render"].path == tmp_path / "landscape_render.mp4"
    assert plan.settings.fps == 60  # most sources are 60 fps
    assert (plan.intro_s, plan.outro_s, plan.total_s, plan.title) == (2.0, 0.0, 34.0, "T")


def test_past_the_shorts_limit_the_portrait_is_cut_on_a_beat_in_its_own_pass(tmp_path: Path) -> None:
    spans = _spans(10, 20.0)  # 202 s
    plan = plan_renders(spans, {}, BOTH, "T", RenderOptions(fps=30), tmp_path)
    landscape, portrait = plan.groups
    assert (landscape.names, portrait.names) == (("landscape_render",), ("portrait_render",))
    assert landscape.spans[-1].montage_out_s == 202.0
    assert portrait.spans[-1].montage_out_s <= PORTRAIT_MAX_S
    assert (PORTRAIT_MAX_S - portrait.spans[-1].montage_out_s) < 4 * SPAN.beat_s
    assert plan.settings.fps == 30


def test_branding_adds_an_unbranded_portrait_and_an_end_card(tmp_path: Path) -> None:
    logo, outro = tmp_path / "logo.png", tmp_path / "outro.png"
    Image.new("RGBA", (10, 10)).save(logo)
    Image.new("RGB", (10, 10)).save(outro)
    options = RenderOptions(branding_logo=str(logo), outro_image=str(outro), outro_s=3.0)
    plan = plan_renders(_spans(2, 8.0), {}, ["portrait_render"], "T", options, tmp_path)
    assert [g.names for g in plan.groups] == [("portrait_render", UNBRANDED)]
    branded, unbranded = plan.outputs["portrait_render"], plan.outputs[UNBRANDED]
    assert (branded.logo, branded.outro_image, branded.outro_s) == (logo, outro, 3.0)
    assert (unbranded.logo, unbranded.outro_image, unbranded.outro_s) == (None, None, 0.0)
    assert (unbranded.width, unbranded.height) == (branded.width, branded.height) == (1080, 1920)
    assert plan.outro_s == 3.0
    without_card = plan_renders(_spans(2, 8.0), {}, BOTH, "T", RenderOptions(outro_s=3.0), tmp_path)
    assert without_card.outro_s == 0.0 and UNBRANDED not in without_card.outputs


def test_a_missing_branding_file_is_refused_before_any_work(tmp_path: Path) -> None:
    options = RenderOptions(intro_image=str(tmp_path / "nowhere.png"))
    with pytest.raises(BrandingFileError, match=r"intro_image .*nowhere.png is not a file"):
        plan_renders(_spans(2, 8.0), {}, BOTH, "T", options, tmp_path)


def test_the_planned_lengths_cover_every_render_the_plan_makes_whatever_the_branding(tmp_path: Path) -> None:
    """The soundtrack is made beside the render from `planned_lengths`: a render length it misses is
    made again after the render. An outro image alone (no logo) also adds the unbranded portrait."""
    logo, outro = tmp_path / "logo.png", tmp_path / "outro.png"
    Image.new("RGBA", (10, 10)).save(logo)
    Image.new("RGB", (10, 10)).save(outro)
    spans = _spans(2, 8.0)
    for branding in (
        {},
        {"branding_logo": str(logo)},
        {"outro_image": str(outro)},
        {"branding_logo": str(logo), "outro_image": str(outro)},
    ):
        options = RenderOptions(fps=30, outro_s=3.0, **branding)  # type: ignore[arg-type]
        plan = plan_renders(spans, {}, BOTH, "T", options, tmp_path)
        rendered = {
            max(s.montage_out_s for s in group.spans) + plan.outputs[name].outro_s
            for group in plan.groups
            for name in group.names
        }
        assert set(planned_lengths(spans, options)["main"]) == rendered, branding
