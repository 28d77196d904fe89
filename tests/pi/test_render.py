"""Pixel-exact checks of the 8×8 icons, rotation and brightness."""

from __future__ import annotations

import pytest

from whichbin.pi import render
from whichbin.pi.render import (
    BLACK,
    BLUE,
    DIM_RED,
    GREEN,
    ORANGE,
    RED,
    icon_pixels,
    quantise_rgb565,
    rotate,
    scale_brightness,
    to_text,
)

# The documented bitmaps, repeated here on purpose: changing an icon is a contract change.
C = """\
..####..
.#....#.
.#......
.#......
.#......
.#......
.#....#.
..####.."""
L = """\
.#......
.#......
.#......
.#......
.#......
.#......
.#......
.######."""
R = """\
.#####..
.#....#.
.#....#.
.#####..
.#..#...
.#...#..
.#....#.
.#....#."""
Q = """\
..####..
.#....#.
......#.
.....#..
....#...
....#...
........
....#..."""
X = """\
#......#
.#....#.
..#..#..
...##...
...##...
..#..#..
.#....#.
#......#"""


def expected(bitmap: str, colour: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    return [colour if ch == "#" else BLACK for ch in bitmap.replace("\n", "")]


def test_colours_are_the_documented_rgb() -> None:
    assert GREEN == (0, 255, 0)
    assert RED == (255, 0, 0)
    assert BLUE == (0, 0, 255)
    assert ORANGE == (255, 165, 0)
    assert BLACK == (0, 0, 0)


@pytest.mark.parametrize(
    ("icon", "bitmap", "colour"),
    [
        ("compost", C, GREEN),
        ("landfill", L, RED),
        ("recycling", R, BLUE),
        ("idle", Q, ORANGE),
        ("unsure", Q, ORANGE),
        ("disconnected", X, DIM_RED),
    ],
)
def test_icon_pixels_match_bitmap(icon: str, bitmap: str, colour: tuple[int, int, int]) -> None:
    pixels = icon_pixels(icon)
    assert len(pixels) == 64
    assert pixels == expected(bitmap, colour)
    assert to_text(pixels) == bitmap
    assert render.render(icon) == pixels


def test_icons_are_distinct_and_unknown_bins_show_question_mark() -> None:
    shown = {tuple(icon_pixels(i)) for i in ("compost", "landfill", "recycling", "idle")}
    assert len(shown) == 4
    assert tuple(icon_pixels("disconnected")) not in shown
    assert icon_pixels("hazardous") == icon_pixels("unsure")


def test_glyph_must_be_8x8() -> None:
    with pytest.raises(ValueError):
        render.glyph_pixels(["#"] * 8, GREEN)


def test_rotation_is_clockwise() -> None:
    one = [BLACK] * 64
    one[0] = RED  # top-left
    assert rotate(one, 0) == one
    assert rotate(one, 90).index(RED) == 7  # top-right
    assert rotate(one, 180).index(RED) == 63  # bottom-right
    assert rotate(one, 270).index(RED) == 56  # bottom-left
    second = [BLACK] * 64
    second[1] = RED  # row 0, column 1 → row 1, column 7 after 90° clockwise
    assert rotate(second, 90).index(RED) == 15


def test_rotation_round_trips() -> None:
    c = icon_pixels("compost")
    assert rotate(rotate(c, 90), 270) == c
    assert rotate(rotate(rotate(rotate(c, 90), 90), 90), 90) == c
    assert rotate(c, 180) == list(reversed(c))
    assert to_text(rotate(icon_pixels("landfill"), 180)).splitlines()[0] == ".######."
    with pytest.raises(ValueError):
        rotate(c, 45)


def test_brightness_scales_channels() -> None:
    c = icon_pixels("idle")
    half = scale_brightness(c, 0.5)
    assert set(half) == {(0, 0, 0), (128, 82, 0)}  # round(127.5)=128, round(82.5)=82
    assert set(scale_brightness(c, 0.0)) == {BLACK}
    assert scale_brightness(c, 1.0) == c
    assert render.render("idle", rotation=90, brightness=0.5) == rotate(half, 90)
    with pytest.raises(ValueError):
        scale_brightness(c, 1.5)


def test_quantise_rgb565() -> None:
    assert quantise_rgb565((255, 255, 255)) == (248, 252, 248)
    assert quantise_rgb565(ORANGE) == (248, 164, 0)
    assert quantise_rgb565(GREEN) == (0, 252, 0)
