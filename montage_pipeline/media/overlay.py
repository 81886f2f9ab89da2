"""Text and image overlays, drawn once with Pillow and composited by FFmpeg's overlay filter.

The font is the FreeType font bundled with Pillow (`ImageFont.load_default(size=...)`): it installs with
our dependencies, so nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


RGB = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Palette:
    """A title card's colours: a diagonal gradient from `dark` to `light`, the title in `text` and the
    subtitle in `accent`."""

    dark: RGB
    light: RGB
    text: RGB
    accent: RGB


# The card's colours before themes (a night-blue gradient), kept for weeks without one.
DEFAULT_PALETTE = Palette(
    dark=(12, 14, 30), light=(54, 46, 115), text=(245, 245, 250), accent=(200, 205, 230)
)
# Where a portrait card breaks the title into two lines: the first of these separators.
TITLE_BREAKS = (" — ", " - ")


def montage_title(week_start: date, theme: str | None = None) -> str:
    """The seed's title, "Weekly Highlights - January 27, 2025", or with a theme
    "Weekly Highlights — Doom week · January 27, 2025"."""
    day = f"{week_start:%B} {week_start.day}, {week_start.year}"
    if theme:
        return f"Weekly Highlights — {theme} week · {day}"
    return f"Weekly Highlights - {day}"


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """The image scaled to cover width×height and centre-cropped (no bars)."""
    scale = max(width / image.width, height / image.height)
    resized = image.convert("RGB").resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def title_card(
    width: int,
    height: int,
    title: str,
    subtitle: str | None = None,
    background: Image.Image | None = None,
    palette: Palette = DEFAULT_PALETTE,
) -> Image.Image:
    """A full-frame title card: the title centred over the palette's gradient or a darkened branded
    image (whose own colours win; the text keeps the palette's)."""
    if background is not None:
        base = Image.blend(cover(background, width, height), Image.new("RGB", (width, height)), 0.45)
        return _title_text(base, title, subtitle, palette)
    card = Image.linear_gradient("L").resize((width, height)).rotate(35, expand=False, fillcolor=0)
    channels = [
        card.point(lambda v, lo=lo, hi=hi: lo + (hi - lo) * v // 255)
        for lo, hi in zip(palette.dark, palette.light, strict=True)
    ]
    return _title_text(Image.merge("RGB", channels), title, subtitle, palette)


def _title_lines(title: str, portrait: bool) -> list[str]:
    """The title on one line, or in portrait on two at its first separator."""
    if portrait:
        for separator in TITLE_BREAKS:
            head, found, tail = title.partition(separator)
            if found:
                return [head, tail]
    return [title]


def _title_text(base: Image.Image, title: str, subtitle: str | None, palette: Palette) -> Image.Image:
    width, height = base.size
    draw = ImageDraw.Draw(base)
    size = max(16, int(min(width, height * 16 / 9) / 24))
    lines = _title_lines(title, height > width)
    total = len(lines) * size * 1.3
    y = (height - total) / 2
    for line in lines:
        box = draw.textbbox((0, 0), line, font=font(size))
        draw.text(((width - (box[2] - box[0])) / 2, y), line, font=font(size), fill=palette.text)
        y += size * 1.3
    if subtitle:
        small = max(12, size // 2)
        box = draw.textbbox((0, 0), subtitle, font=font(small))
        draw.text(
            ((width - (box[2] - box[0])) / 2, y + size * 0.4),
            subtitle,
            font=font(small),
            fill=palette.accent,
        )
    return base


def lower_third(text: str, frame_width: int, frame_height: int) -> Image.Image:
    """An RGBA credit plate sized for the frame; transparent around a soft dark box."""
    size = max(12, int(min(frame_width, frame_height) / 22))
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    box = probe.textbbox((0, 0), text, font=font(size))
    pad = size // 2
    w, h = int(box[2] - box[0]) + 2 * pad, int(box[3] - box[1]) + 2 * pad
    plate = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
    shadow = Image.new("RGBA", plate.size, (0, 0, 0, 0))
    ImageDraw.Draw(shadow).rounded_rectangle((pad, pad, pad + w, pad + h), radius=pad, fill=(0, 0, 0, 150))
    plate = Image.alpha_composite(plate, shadow.filter(ImageFilter.GaussianBlur(2)))
    ImageDraw.Draw(plate).text(
        (2 * pad - box[0], 2 * pad - box[1]), text, font=font(size), fill=(255, 255, 255, 255)
    )
    return plate


def safe_position(plate: Image.Image, width: int, height: int) -> tuple[int, int]:
    """Where a lower third goes: bottom-left in landscape; above the bottom 20 % UI band in portrait."""
    if height > width:  # TikTok/Reels/Shorts: keep clear of the bottom ~20 % and the right ~12 %
        return int(width * 0.06), int(height * 0.78) - plate.height
    return int(width * 0.04), int(height * 0.90) - plate.height


def logo_image(path: Path, frame_width: int, frame_height: int) -> Image.Image:
    """The configured logo as RGBA, about 9 % of the frame's shorter side tall."""
    logo = Image.open(path).convert("RGBA")
    height = max(8, int(min(frame_width, frame_height) * 0.09))
    return logo.resize((max(1, round(logo.width * height / logo.height)), height))


def logo_position(logo: Image.Image, width: int, height: int) -> tuple[int, int]:
    """Top right in landscape; in portrait below the top ~14 % and clear of the right ~12 % UI column."""
    if height > width:
        return int(width * 0.88) - logo.width, int(height * 0.15)
    return width - logo.width - int(width * 0.03), int(height * 0.05)
