"""@mentions of featured creators in posts: bounded, whole, only handles a platform can resolve."""

from __future__ import annotations

import dataclasses

from montage_pipeline.publishing.content import (
    MAX_CAPTION_CHARS,
    MAX_DESCRIPTION_BYTES,
    MAX_MENTIONS,
    caption,
    description,
    fit_description,
    mentions,
)
from montage_pipeline_tests.test_week_theme import SPAN

TITLE = "Weekly Highlights — Doom week · January 27, 2025"


def _spans(count: int, handle_len: int = 8) -> list:
    return [
        dataclasses.replace(
            SPAN, order=i + 1, user_handle=f"{i:0{handle_len}d}", game="Doom", montage_in_s=2.0 + 12 * i,
            montage_out_s=14.0 + 12 * i,
        )
        for i in range(count)
    ]  # fmt: skip


def test_only_resolvable_handles_are_mentioned_at_most_ten() -> None:
    given = [
        "@ace",
        "ace",
        "blaze_99",
        "c.o-b",
        "dusk<script>",
        "",
        "  ",
        "e f",
        *(f"h{i}" for i in range(20)),
    ]
    found = mentions(given)
    assert found[:3] == ["@ace", "@blaze_99", "@c.o-b"]  # one @, duplicates once, order kept
    assert len(found) == MAX_MENTIONS
    assert all("<" not in m and " " not in m for m in found)


def test_the_description_says_the_theme_and_mentions_within_youtubes_limits() -> None:
    spans = _spans(3)
    text = description(TITLE, spans, 40.0, "Doom", ["AceOnYT", "<b>"])
    assert "This week's theme: Doom." in text
    assert "On YouTube: @AceOnYT" in text and "<" not in text and ">" not in text
    assert description(TITLE, spans, 40.0).count("@AceOnYT") == 0  # no handles, no mention line
    # A huge cut: the description is cut to 5000 bytes, and the mentions, near the top, stay whole.
    many = _spans(400, handle_len=30)
    long_text = description(TITLE, many, 5000.0, "Doom", [f"creator_{i}" for i in range(12)])
    assert len(long_text.encode()) <= MAX_DESCRIPTION_BYTES and fit_description(long_text) == long_text
    mention_line = next(line for line in long_text.split("\n") if line.startswith("On YouTube:"))
    assert mention_line.split(" ")[2:] == [f"@creator_{i}" for i in range(MAX_MENTIONS)]


def test_captions_keep_whole_mentions_within_2200_characters() -> None:
    spans = _spans(3)
    short = caption(TITLE, spans, ["ace.tok", "blaze"])
    assert short.endswith(" @ace.tok @blaze") and "Doom week" in short
    assert caption(TITLE, spans) == short.removesuffix(" @ace.tok @blaze")
    # Credits that nearly fill the caption leave room for only some mentions, never half of one.
    crowded = _spans(150, handle_len=12)
    full = caption(TITLE, crowded, [f"mention_{i:02d}" for i in range(10)])
    assert len(full) <= MAX_CAPTION_CHARS
    base = caption(TITLE, crowded)
    tail = full.removeprefix(base).split()
    assert all(t.startswith("@mention_") and len(t) == len("@mention_00") for t in tail)
