"""The week's theme: an admin's choice for the week, else the game with the most screen time in the cut.

A theme names the week ("Weekly Highlights — Doom week · January 27, 2025"), colours its title card
(a shipped palette for well-known games, else one derived from the name, the same every time) and
picks its music from the library's subfolder for the theme when there is one (`media/music_library`).

`scored_highlights` decides the theme once and stores it beside the EDL (`weeks/{week}/theme.json`);
the renders, the mix, the export and the posts read that record, so a video and its post never
disagree even when an admin changes the setting mid-run (the change applies from the next rebuild).
"""

from __future__ import annotations

import colorsys
import json
import re
import tempfile
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.music_library import TrackBeats, week_track, week_track_path
from montage_pipeline.media.overlay import DEFAULT_PALETTE, Palette, montage_title
from montage_pipeline.media.timeline import Timeline
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore

ThemeSource = Literal["admin", "most_featured", "none"]

# Colours for games the platform sees most; any other theme gets `derived_palette`.
KNOWN_PALETTES: dict[str, Palette] = {
    "doom": Palette(dark=(20, 4, 2), light=(150, 30, 10), text=(255, 236, 210), accent=(255, 170, 60)),
    "minecraft": Palette(
        dark=(16, 32, 12), light=(70, 130, 45), text=(245, 250, 235), accent=(190, 230, 150)
    ),
    "fortnite": Palette(dark=(18, 10, 46), light=(60, 90, 200), text=(250, 245, 255), accent=(250, 200, 60)),
    "apex": Palette(dark=(30, 6, 8), light=(160, 40, 40), text=(250, 240, 235), accent=(240, 190, 170)),
    "apex-legends": Palette(
        dark=(30, 6, 8), light=(160, 40, 40), text=(250, 240, 235), accent=(240, 190, 170)
    ),
    "valorant": Palette(dark=(24, 8, 14), light=(200, 60, 70), text=(250, 240, 240), accent=(240, 200, 190)),
    "rocket-league": Palette(
        dark=(6, 16, 40), light=(30, 110, 200), text=(240, 248, 255), accent=(250, 160, 60)
    ),
    "league-of-legends": Palette(
        dark=(8, 16, 24), light=(40, 90, 110), text=(240, 230, 200), accent=(200, 170, 100)
    ),
    "counter-strike": Palette(
        dark=(20, 18, 12), light=(120, 100, 60), text=(250, 245, 230), accent=(240, 180, 70)
    ),
    "overwatch": Palette(
        dark=(20, 20, 30), light=(90, 100, 130), text=(255, 255, 255), accent=(250, 160, 40)
    ),
}


def slugify(name: str) -> str:
    """The theme's key for palettes and music folders: "Apex Legends" -> "apex-legends"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return (
        re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or f"theme-{zlib.crc32(name.encode()):08x}"
    )


def derived_palette(slug: str) -> Palette:
    """A palette from the name alone: a hue from its CRC-32, dark and saturated behind light text."""
    hue = zlib.crc32(slug.encode()) % 360 / 360

    def rgb(lightness: float, saturation: float) -> tuple[int, int, int]:
        r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
        return round(r * 255), round(g * 255), round(b * 255)

    return Palette(dark=rgb(0.07, 0.6), light=rgb(0.35, 0.55), text=(248, 248, 250), accent=rgb(0.8, 0.6))


def palette_for(slug: str) -> Palette:
    return KNOWN_PALETTES.get(slug) or derived_palette(slug)


@dataclass(frozen=True, slots=True)
class WeekTheme:
    """The week's theme and why it is the theme; `name` is empty when the week has none."""

    name: str
    source: ThemeSource
    screen_time_s: float = 0.0  # the game's seconds in the cut (most_featured)

    @property
    def slug(self) -> str | None:
        return slugify(self.name) if self.name else None

    @property
    def palette(self) -> Palette:
        return palette_for(self.slug) if self.slug else DEFAULT_PALETTE

    def title(self, week: str) -> str:
        return montage_title(date.fromisoformat(week), self.name or None)


NO_THEME = WeekTheme("", "none")


def most_featured_game(spans: Sequence[EditSpan]) -> tuple[str, float] | None:
    """The game with the most screen time in the cut and its seconds; ties go to the name first in
    alphabetical order (case-insensitive). Spellings of one game count together, shown as the one with
    the most screen time."""
    seconds: dict[str, float] = defaultdict(float)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for span in spans:
        name = " ".join(span.game.split())
        if not name:
            continue
        length = span.montage_out_s - span.montage_in_s
        seconds[name.casefold()] += length
        spellings[name.casefold()][name] += round(length * 1000)
    if not seconds:
        return None
    key = min(seconds, key=lambda k: (-round(seconds[k], 6), k))
    shown = min(spellings[key].items(), key=lambda item: (-item[1], item[0]))[0]
    return shown, round(seconds[key], 3)


def resolve_theme(spans: Sequence[EditSpan], admin_theme: str | None) -> WeekTheme:
    """The admin's theme for the week when set, else the most featured game, else no theme."""
    if admin_theme:
        return WeekTheme(admin_theme, "admin")
    found = most_featured_game(spans)
    return WeekTheme(found[0], "most_featured", found[1]) if found else NO_THEME


Cut = tuple[Timeline, list[EditSpan]]


@dataclass(frozen=True, slots=True)
class ThemedCut:
    timeline: Timeline
    spans: list[EditSpan]
    theme: WeekTheme
    track: TrackBeats | None  # the music the cut follows; None: generated music (or a fixed tempo)


def cut_for_theme(
    cut: Callable[[TrackBeats | None], Cut],
    week: str,
    admin_theme: str | None,
    library: Path | None,
    follow_track: bool = True,
) -> ThemedCut:
    """Cut the week to the music of its theme.

    An admin's theme is known first: its track sets the tempo. Otherwise the first cut (on the library's
    week track) decides the theme; when the theme's own music folder offers another track, the week is
    cut again on that track's beat grid. The theme stays the first cut's (it chose the music), even in
    the rare case that the second cut favours another game. `follow_track=False` (a fixed tempo in the
    run config) cuts once, without a track.
    """
    first_slug = slugify(admin_theme) if admin_theme else None
    track = week_track(library, week, first_slug) if follow_track else None
    timeline, spans = cut(track)
    theme = resolve_theme(spans, admin_theme)
    if follow_track and theme.slug != first_slug:
        themed = week_track_path(library, week, theme.slug)
        if themed is not None and (track is None or themed != track.path):
            track = week_track(library, week, theme.slug)
            timeline, spans = cut(track)
    return ThemedCut(timeline, spans, theme, track)


def store_theme(store: MediaStore, week: str, theme: WeekTheme) -> None:
    """The week's theme as `weeks/{week}/theme.json`, for the steps after the cut."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "theme.json"
        path.write_text(json.dumps(asdict(theme), sort_keys=True))
        store.put_file(path, keys.theme_key(week), content_type="application/json")


def load_theme(store: MediaStore, week: str, spans: Sequence[EditSpan]) -> WeekTheme:
    """The theme `scored_highlights` stored; for a cut made before themes existed, the cut's most
    featured game (there was no admin setting then)."""
    key = keys.theme_key(week)
    if not store.exists(key):
        return resolve_theme(spans, None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "theme.json"
        store.get_file(key, path)
        raw = json.loads(path.read_text())
    return WeekTheme(str(raw["name"]), raw["source"], float(raw.get("screen_time_s", 0.0)))
