"""Draw the Teams app icons: appPackage/color.png (192×192) and appPackage/outline.png (32×32).

A dev-time tool, not part of the bot: run it after changing the design and commit the PNGs.

    pip install pillow
    python tools/make_icons.py

The symbol is four rising bars — the model's four phases, Opstart, Forberedelse, Ibrugtagning and
Forankring — with a check mark above the first, short ones. Teams' rules: the colour icon is 192×192
(here a full-bleed background in the manifest's accentColor), the outline icon 32×32 with every pixel
either fully transparent or white. The outline is drawn straight on the pixel grid without
anti-aliasing, so every pixel is exactly transparent or exactly opaque white.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    from PIL import Image, ImageDraw
except ImportError:  # pragma: no cover - a dev tool's own message
    sys.exit("tools/make_icons.py needs Pillow: pip install pillow")

PACKAGE = Path(__file__).resolve().parent.parent / "appPackage"
WHITE = (255, 255, 255, 255)
SCALE = 4  # the colour icon is drawn 4× larger and scaled down, for smooth edges


def accent_color() -> tuple[int, int, int, int]:
    """The manifest's accentColor, so the icon and the colour around it in Teams match."""
    value = json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))["accentColor"]
    return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16), 255)


def color_icon() -> Image.Image:
    size = 192 * SCALE
    image = Image.new("RGBA", (size, size), accent_color())
    draw = ImageDraw.Draw(image)

    def s(v: float) -> int:
        return round(v * SCALE)

    # Four bars in the middle 120 px (Teams keeps a margin around the symbol), bottoms aligned.
    width, gap, bottom = 24, 8, 150
    left = (192 - (4 * width + 3 * gap)) / 2
    for i, height in enumerate((36, 58, 80, 102)):
        x = left + i * (width + gap)
        draw.rounded_rectangle((s(x), s(bottom - height), s(x + width), s(bottom)), radius=s(5), fill=WHITE)
    # A check mark in the free corner above the first two bars.
    draw.line([(s(40), s(66)), (s(54), s(80)), (s(82), s(46))], fill=WHITE, width=s(10), joint="curve")
    for x, y in ((40, 66), (82, 46)):  # round line caps
        draw.ellipse((s(x - 5), s(y - 5), s(x + 5), s(y + 5)), fill=WHITE)
    return image.resize((192, 192), Image.Resampling.LANCZOS).convert("RGB")


def outline_icon() -> Image.Image:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    pixels = image.load()

    def fill(x0: int, y0: int, x1: int, y1: int) -> None:  # inclusive pixel box
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                pixels[x, y] = WHITE

    # The same bars on the pixel grid: 5 px wide, 2 px apart, from x=3 to x=28, bottom row y=27.
    for i, height in enumerate((7, 11, 15, 20)):
        x = 3 + i * 7
        fill(x, 28 - height, x + 4, 27)
    # The check mark, 2 px thick, above the first two bars.
    for x, y in ((4, 11), (5, 12), (6, 13), (7, 14)):
        fill(x, y, x + 1, y + 1)
    for x, y in ((8, 13), (9, 12), (10, 11), (11, 10), (12, 9), (13, 8), (14, 7), (15, 6)):
        fill(x, y, x + 1, y + 1)
    return image


def main() -> int:
    color_icon().save(PACKAGE / "color.png", optimize=True)
    outline_icon().save(PACKAGE / "outline.png", optimize=True)
    print(f"wrote {PACKAGE / 'color.png'} and {PACKAGE / 'outline.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
