"""What a post says: title, description with credits and chapters, tags, captions; from the week's EDL.

YouTube turns a description's timestamps into chapters only when the list starts at 0:00, has at least
three entries and each lasts at least ten seconds; otherwise it shows none. The chapter list is built
to meet those rules (one chapter per creator's run of clips, merging runs that are too short), and is
left out when it cannot.

Handles and game names are the users' own text: every one is cleaned (control characters, line
breaks, bidi overrides and angle brackets out) where it enters a post. YouTube refuses `<` and `>` in
titles and descriptions, a title over 100 characters and a description over 5000 bytes of UTF-8;
`fit_title`, `fit_description` and `fit_tags` make any text meet those rules, and the YouTube client
applies them to whatever content it is given.

Featured creators are @mentioned per platform where their connection of that platform records their
handle (`social_connections.remote_handle`): at most `MAX_MENTIONS`, handles of the platforms' own
alphabet only (letters, digits, `.`, `_`, `-`), and only as many as fit the platform's limit, so a
mention is never cut in half. The week's theme is said in the title and in a line of the description.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from montage_pipeline.highlights.rows import EditSpan

MIN_CHAPTER_S = 10.0
MIN_CHAPTERS = 3
MAX_TITLE_CHARS = 100
MAX_DESCRIPTION_BYTES = 5000  # UTF-8 bytes, not characters
MAX_TAG_CHARS = 30
MAX_TAGS_TOTAL_CHARS = 500  # YouTube counts a tag with a space as quoted, plus a comma between tags
MAX_CAPTION_CHARS = 2200  # Instagram's caption and TikTok's title
MAX_MENTIONS = 10  # more reads as spam, and platforms limit mentions per post (Instagram: 20)
_MENTIONABLE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Look-alikes keep "<3" or "<Team>" readable where YouTube refuses the real brackets.
_BRACKETS = str.maketrans({"<": "\u2039", ">": "\u203a"})
# Bidi embeddings, overrides and isolates: they can make a handle display as someone else's text.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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
    # The caption per platform ("tiktok", "instagram") when it differs from `caption` (its @mentions).
    captions: Mapping[str, str] = field(default_factory=dict)

    def caption_for(self, platform: str) -> str:
        return self.captions.get(platform, self.caption)


def clean_text(text: str) -> str:
    """One line of user text made safe for any post: no control or bidi characters, no `<` `>`,
    whitespace collapsed."""
    kept = []
    for ch in text.translate(_BRACKETS):
        category = unicodedata.category(ch)
        if category in ("Zl", "Zp") or ch.isspace():
            kept.append(" ")
        elif category not in ("Cc", "Cs") and ch not in _BIDI:
            kept.append(ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip()


def _clean_lines(text: str) -> str:
    return "\n".join(clean_text(line) for line in text.split("\n"))


def fit_title(title: str) -> str:
    """A YouTube title: cleaned, at most 100 characters (an ellipsis says it was cut)."""
    title = clean_text(title)
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1].rstrip() + "\u2026"


def fit_description(text: str) -> str:
    """A YouTube description: lines cleaned, at most 5000 bytes of UTF-8, cut after a whole line when
    one ends in the last fifth, never inside a character."""
    text = _clean_lines(text.replace("\r\n", "\n"))
    data = text.encode()
    if len(data) <= MAX_DESCRIPTION_BYTES:
        return text
    cut = data[:MAX_DESCRIPTION_BYTES].decode("utf-8", errors="ignore")
    head, newline, _ = cut.rpartition("\n")
    return head if newline and len(head.encode()) >= MAX_DESCRIPTION_BYTES * 4 // 5 else cut


def fit_tags(candidates: Iterable[str]) -> tuple[str, ...]:
    """Cleaned, distinct tags of at most 30 characters, as many as fit YouTube's 500-character total."""
    out: list[str] = []
    total = 0
    for tag in dict.fromkeys(clean_text(t)[:MAX_TAG_CHARS].strip() for t in candidates):
        cost = len(tag) + (2 if " " in tag else 0) + (1 if out else 0)
        if not tag or total + cost > MAX_TAGS_TOTAL_CHARS:
            continue
        out.append(tag)
        total += cost
    return tuple(out)


def _handle(span: EditSpan) -> str:
    return "@" + clean_text(span.user_handle)


def _games(spans: Sequence[EditSpan]) -> list[str]:
    return sorted({g for g in (clean_text(s.game or "") for s in spans) if g})


def timestamp(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def chapters(spans: Sequence[EditSpan], duration_s: float) -> list[Chapter]:
    """One chapter per run of one creator's clips, from 0:00; [] when YouTube's rules can't be met."""
    runs: list[Chapter] = []
    for span in sorted(spans, key=lambda s: s.order):
        game = clean_text(span.game or "")
        label = f"{_handle(span)} · {game}" if game else _handle(span)
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
    return list(dict.fromkeys(_handle(s) for s in sorted(spans, key=lambda s: s.order)))


def mentions(handles: Iterable[str]) -> list[str]:
    """ "@handle" for each distinct handle a platform can resolve (a leading "@" is dropped; anything
    else outside its alphabet is left out), at most MAX_MENTIONS."""
    cleaned = (h.strip().removeprefix("@") for h in handles)
    return [f"@{h}" for h in dict.fromkeys(h for h in cleaned if _MENTIONABLE.match(h))][:MAX_MENTIONS]


def _fitting(prefix: str, tags: Sequence[str], room: int) -> str:
    """`prefix` and as many of `tags` as fit `room` characters (none at all: "")."""
    kept: list[str] = []
    for tag in tags:
        if len(prefix) + len(" ".join([*kept, tag])) > room:
            break
        kept.append(tag)
    return prefix + " ".join(kept) if kept else ""


def description(
    title: str,
    spans: Sequence[EditSpan],
    duration_s: float,
    theme: str | None = None,
    handles: Sequence[str] = (),
) -> str:
    """The YouTube description: the title, the theme, the creators' @mentions on YouTube (at the top,
    so a long credit or chapter list is what gets cut), the credits, the chapters and the games."""
    games = _games(spans)
    lines = [f"{clean_text(title)}: the week's best plays from our community."]
    if theme and clean_text(theme):
        lines.append(f"This week's theme: {clean_text(theme)}.")
    tagged = mentions(handles)
    if tagged:
        lines.append("On YouTube: " + " ".join(tagged))
    lines += ["", "Featuring " + ", ".join(credits(spans))]
    marks = chapters(spans, duration_s)
    if marks:
        lines += ["", "Chapters:"] + [f"{timestamp(c.start_s)} {c.label}" for c in marks]
    if games:
        lines += ["", "Games: " + ", ".join(games)]
    return fit_description("\n".join(lines))


def tags(spans: Sequence[EditSpan]) -> tuple[str, ...]:
    return fit_tags(["gaming", "highlights", "weekly highlights", "montage", *_games(spans)])


def caption(title: str, spans: Sequence[EditSpan], handles: Sequence[str] = ()) -> str:
    """TikTok's title / Instagram's caption; the creators' @mentions on that platform go last, as many
    whole ones as fit its 2200 characters."""
    hashtags = " ".join(f"#{tag}" for tag in (re.sub(r"\W", "", g) for g in _games(spans)) if tag)
    text = f"{clean_text(title)} 🎮 Featuring {', '.join(credits(spans))} #gaming #highlights {hashtags}"
    text = text.strip()[:MAX_CAPTION_CHARS]
    return text + _fitting(" ", mentions(handles), MAX_CAPTION_CHARS - len(text))
