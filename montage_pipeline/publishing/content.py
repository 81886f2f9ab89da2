"""What a post says: title, description with credits and chapters, tags, captions; from the week's EDL.

YouTube turns a description's timestamps into chapters only when the list starts at 0:00, has at least
three entries and each lasts at least ten seconds; otherwise it shows none. The chapter list is built
to meet those rules (one chapter per creator's run of clips, merging runs that are too short), and is
left out when it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from montage_pipeline.highlights.rows import EditSpan

MIN_CHAPTER_S = 10.0
MIN_CHAPTERS = 3


@dataclass(frozen=True, slots=True)
class Chapter:
    start_s: float
    label: str


@dataclass(frozen=True, slots=True)
class PostContent:
    """Everything a platform client needs for one week's post; files are local paths."""

    week: str
    title: str
    description: str
    caption: str  # TikTok title / Instagram caption
    tags: tuple[str, ...]
    landscape: Path
    portrait: Path
    portrait_unbranded: Path  # TikTok's copy: no added branding
    thumbnail: Path | None
    portrait_url: str  # fetchable by Instagram's servers (presigned or public)
    duration_s: float
    portrait_duration_s: float


def timestamp(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def chapters(spans: Sequence[EditSpan], duration_s: float) -> list[Chapter]:
    """One chapter per run of one creator's clips, from 0:00; [] when YouTube's rules can't be met."""
    runs: list[Chapter] = []
    for span in sorted(spans, key=lambda s: s.order):
        label = f"@{span.user_handle} · {span.game}" if span.game else f"@{span.user_handle}"
        if not runs or runs[-1].label != label:
            runs.append(Chapter(span.montage_in_s, label))
    if not runs:
        return []
    if runs[0].start_s >= MIN_CHAPTER_S:
        runs.insert(0, Chapter(0.0, "Intro"))
    else:  # the title card belongs to the first creator's chapter
        runs[0] = Chapter(0.0, runs[0].label)
    kept: list[Chapter] = []
    for i, run in enumerate(runs):
        end = runs[i + 1].start_s if i + 1 < len(runs) else duration_s
        if kept and end - run.start_s < MIN_CHAPTER_S:
            continue  # too short to be a chapter: its seconds join the previous one
        kept.append(run)
    while len(kept) > 1 and kept[1].start_s - kept[0].start_s < MIN_CHAPTER_S:
        kept.pop(1)
    return kept if len(kept) >= MIN_CHAPTERS else []


def credits(spans: Sequence[EditSpan]) -> list[str]:
    return list(dict.fromkeys(f"@{s.user_handle}" for s in sorted(spans, key=lambda s: s.order)))


def description(title: str, spans: Sequence[EditSpan], duration_s: float) -> str:
    games = sorted({s.game for s in spans if s.game})
    lines = [
        f"{title}: the week's best plays from our community.",
        "",
        "Featuring " + ", ".join(credits(spans)),
    ]
    marks = chapters(spans, duration_s)
    if marks:
        lines += ["", "Chapters:"] + [f"{timestamp(c.start_s)} {c.label}" for c in marks]
    if games:
        lines += ["", "Games: " + ", ".join(games)]
    return "\n".join(lines)[:5000]  # YouTube's description limit


def tags(spans: Sequence[EditSpan]) -> tuple[str, ...]:
    out = ["gaming", "highlights", "weekly highlights", "montage"]
    out += sorted({s.game for s in spans if s.game})
    return tuple(dict.fromkeys(t[:30] for t in out))


def caption(title: str, spans: Sequence[EditSpan]) -> str:
    hashtags = " ".join(
        f"#{''.join(ch for ch in g if ch.isalnum())}" for g in sorted({s.game for s in spans}) if g
    )
    return f"{title} 🎮 Featuring {', '.join(credits(spans))} #gaming #highlights {hashtags}".strip()[:2200]
