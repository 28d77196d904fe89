"""Decision → 8×8 Sense HAT pixels. Pure: plain values in, 64 RGB tuples out.

The icons follow the recipe (SPEC "Display"): compost a green C, landfill a red L,
recycling a blue R, and an orange question mark while idle or unsure. whichbin adds a
dim red X for "the MQTT connection is down" so a dead display never looks idle.

Pixels are row-major from the top-left LED, as ``sense_hat.SenseHat.set_pixels`` takes
them. Glyphs are 8 strings of 8 characters: ``#`` is the icon colour, ``.`` background.
"""

from __future__ import annotations

from collections.abc import Sequence

from whichbin.contract import IDLE, UNSURE

RGB = tuple[int, int, int]
Pixels = list[RGB]

SIZE = 8

BLACK: RGB = (0, 0, 0)
GREEN: RGB = (0, 255, 0)
RED: RGB = (255, 0, 0)
BLUE: RGB = (0, 0, 255)
ORANGE: RGB = (255, 165, 0)
# Dim so it reads as "off / broken" next to the bright red L.
DIM_RED: RGB = (96, 0, 0)
BACKGROUND: RGB = BLACK

GLYPH_C = (
    "..####..",
    ".#....#.",
    ".#......",
    ".#......",
    ".#......",
    ".#......",
    ".#....#.",
    "..####..",
)
GLYPH_L = (
    ".#......",
    ".#......",
    ".#......",
    ".#......",
    ".#......",
    ".#......",
    ".#......",
    ".######.",
)
GLYPH_R = (
    ".#####..",
    ".#....#.",
    ".#....#.",
    ".#####..",
    ".#..#...",
    ".#...#..",
    ".#....#.",
    ".#....#.",
)
GLYPH_QUESTION = (
    "..####..",
    ".#....#.",
    "......#.",
    ".....#..",
    "....#...",
    "....#...",
    "........",
    "....#...",
)
GLYPH_X = (
    "#......#",
    ".#....#.",
    "..#..#..",
    "...##...",
    "...##...",
    "..#..#..",
    ".#....#.",
    "#......#",
)

DISCONNECTED = "disconnected"

# icon name → (glyph, colour). Bins use their SPEC names; anything else shows "?".
ICONS: dict[str, tuple[tuple[str, ...], RGB]] = {
    "compost": (GLYPH_C, GREEN),
    "landfill": (GLYPH_L, RED),
    "recycling": (GLYPH_R, BLUE),
    IDLE: (GLYPH_QUESTION, ORANGE),
    UNSURE: (GLYPH_QUESTION, ORANGE),
    DISCONNECTED: (GLYPH_X, DIM_RED),
}
ROTATIONS = (0, 90, 180, 270)


def glyph_pixels(glyph: Sequence[str], colour: RGB, background: RGB = BACKGROUND) -> Pixels:
    """An 8×8 glyph (8 strings of 8 chars, ``#`` lit) → 64 RGB tuples, row-major."""
    if len(glyph) != SIZE or any(len(row) != SIZE for row in glyph):
        raise ValueError("a glyph is 8 strings of 8 characters")
    return [colour if ch == "#" else background for row in glyph for ch in row]


def icon_pixels(icon: str) -> Pixels:
    """The unrotated, full-brightness picture for an icon name (a bin, idle, unsure,
    disconnected). Unknown names (a rule pack's extra bin) show the question mark."""
    glyph, colour = ICONS.get(icon, ICONS[UNSURE])
    return glyph_pixels(glyph, colour)


def rotate(pixels: Sequence[RGB], degrees: int) -> Pixels:
    """Rotate the picture clockwise by 0/90/180/270 degrees.

    Same convention as ``SenseHat.set_rotation``: use 90 when the Pi is mounted turned
    90° clockwise from "HDMI port facing down".
    """
    if degrees not in ROTATIONS:
        raise ValueError(f"rotation must be one of {ROTATIONS}, not {degrees}")
    grid = list(pixels)
    if len(grid) != SIZE * SIZE:
        raise ValueError("a picture is 64 pixels")
    for _ in range(degrees // 90):
        # clockwise: new[r][c] = old[7 - c][r]
        grid = [grid[(SIZE - 1 - c) * SIZE + r] for r in range(SIZE) for c in range(SIZE)]
    return grid


def scale_brightness(pixels: Sequence[RGB], brightness: float) -> Pixels:
    """Scale every channel by ``brightness`` in [0, 1] (rounded to the nearest integer)."""
    if not 0.0 <= brightness <= 1.0:
        raise ValueError(f"brightness must be between 0 and 1, not {brightness}")
    if brightness == 1.0:
        return list(pixels)
    return [
        (round(r * brightness), round(g * brightness), round(b * brightness)) for r, g, b in pixels
    ]


def render(icon: str, rotation: int = 0, brightness: float = 1.0) -> Pixels:
    """The frame a display shows for an icon name: glyph, rotated, brightness-scaled."""
    return scale_brightness(rotate(icon_pixels(icon), rotation), brightness)


def quantise_rgb565(pixel: RGB) -> RGB:
    """What a Sense HAT stores (RGB565): e.g. white (255,255,255) reads back (248,252,248)."""
    r, g, b = pixel
    return (r & 0xF8, g & 0xFC, b & 0xF8)


def to_text(pixels: Sequence[RGB]) -> str:
    """8 lines, ``#`` for a lit pixel and ``.`` for an unlit one (for logs and asserts)."""
    rows = []
    for r in range(SIZE):
        row = pixels[r * SIZE : (r + 1) * SIZE]
        rows.append("".join("#" if any(ch) else "." for ch in row))
    return "\n".join(rows)
