"""Chinese plates drawn to the GA 36-2018 layouts: every standard type, its colours, rows, character
boxes and a valid random text, deterministic from a numpy Generator.

The characters are drawn with WenQuanYi Zen Hei (Debian's fonts-wqy-zenhei, a Hei face like the plate
font), each glyph's ink stretched to its character box as the plate font is (45 x 90 mm on a single-row
plate: narrow and tall), thickened toward the plate font's stroke. Sizes in millimetres are the
standard's; a plate is drawn at PX_PER_MM and warped to its place in a scene (benchmarks/plate_synth/scenes.py).

Texts are written the way a reader should report them: every character left to right, upper row first,
without separators; WJ plates with their small characters in place ("WJ粤8888X", "WJ0212345").
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

Rgb = tuple[int, int, int]
Box = tuple[float, float, float, float]  # x, y, width, height in mm from the plate's top-left corner
Colour = Literal["blue", "yellow", "green", "white", "black"]

PX_PER_MM = 2.0  # drawing resolution: a 440 mm plate is 880 px, above any size it takes in a scene
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei (installed by scripts/bootstrap)
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",  # fonts-noto-cjk
)

# The plate's own alphabet, written out here rather than imported from edge/plates/grammar.py: the
# evaluation set is the truth the reader is measured against, so it must not share the reader's mistakes.
PROVINCES = "京津沪渝冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are never used
DIGITS = "0123456789"
CONSULATE_PROVINCES = "沪粤川辽云桂黑渝"  # cities with foreign consulates
MILITARY_FIRST = "VKHBSLJNGCZ"  # service / theatre letter (red)
MILITARY_SECOND = "ABCDEFGHJKLMNPRSTUVWXY"
WJ_SERVICE = "JBTSHD"  # armed police service letters that may end a 2012 WJ serial

# Colours as a camera sees them under daylight (RGB), sampled from real plates.
BLUE = (14, 62, 176)
YELLOW = (246, 190, 22)
WHITE = (236, 238, 234)
BLACK = (20, 20, 22)
GREEN = (64, 190, 112)
GREEN_LIGHT = (228, 246, 232)  # the top of the small new-energy plate's gradient
INK_BLACK = (12, 12, 14)
INK_WHITE = (244, 244, 244)
RED = (204, 24, 30)


@dataclass(frozen=True)
class Glyph:
    char: str
    box: Box
    colour: Rgb
    small: bool = False  # a WJ plate's small characters (drawn bolder, they are thin at this size)


@dataclass(frozen=True)
class Plate:
    """One rendered plate and its truth."""

    kind: str  # a key of PLATE_TYPES
    text: str  # what a reader should report
    colour: Colour  # the background colour class (new-energy plates: green)
    rows: int
    size_mm: tuple[int, int]  # width, height
    image: npt.NDArray[np.uint8]  # BGR, size_mm * PX_PER_MM
    alpha: npt.NDArray[np.float32]  # 1 on the plate, 0 outside its rounded corners


# ---------------------------------------------------------------- texts


def _pick(rng: np.random.Generator, characters: str) -> str:
    return characters[int(rng.integers(len(characters)))]


def _serial(rng: np.random.Generator, length: int, letter_chance: float = 0.2, max_letters: int = 2) -> str:
    """Letters and digits as issued: mostly digits, at most `max_letters` letters."""
    out, letters = [], 0
    for _ in range(length):
        if letters < max_letters and rng.random() < letter_chance:
            out.append(_pick(rng, LETTERS))
            letters += 1
        else:
            out.append(_pick(rng, DIGITS))
    return "".join(out)


def _digits(rng: np.random.Generator, length: int) -> str:
    return "".join(_pick(rng, DIGITS) for _ in range(length))


def text_ordinary(rng: np.random.Generator) -> str:
    return _pick(rng, PROVINCES) + _pick(rng, LETTERS) + _serial(rng, 5)


def text_with_suffix(suffix: str, provinces: str = PROVINCES, office: str = LETTERS) -> Callable[..., str]:
    def make(rng: np.random.Generator) -> str:
        return _pick(rng, provinces) + _pick(rng, office) + _serial(rng, 4, 0.15, 1) + suffix

    return make


def text_hk_macau(rng: np.random.Generator) -> str:
    return "粤Z" + _serial(rng, 4, 0.25, 2) + _pick(rng, "港澳")


def text_consulate(rng: np.random.Generator) -> str:
    return _pick(rng, CONSULATE_PROVINCES) + "A" + _digits(rng, 4) + "领"


def text_embassy(rng: np.random.Generator) -> str:
    return "使" + str(int(rng.integers(100, 300))) + _digits(rng, 3)  # country code, then the car


def text_new_energy_small(rng: np.random.Generator) -> str:
    """D (electric) or F (hybrid) first, then a letter or digit, then four digits."""
    second = _pick(rng, LETTERS) if rng.random() < 0.4 else _pick(rng, DIGITS)
    return _pick(rng, PROVINCES) + _pick(rng, LETTERS) + _pick(rng, "DF") + second + _digits(rng, 4)


def text_new_energy_large(rng: np.random.Generator) -> str:
    """Five digits, then D or F."""
    return _pick(rng, PROVINCES) + _pick(rng, LETTERS) + _digits(rng, 5) + _pick(rng, "DF")


def text_military(rng: np.random.Generator) -> str:
    return _pick(rng, MILITARY_FIRST) + _pick(rng, MILITARY_SECOND) + _digits(rng, 5)


def text_armed_police(rng: np.random.Generator) -> str:
    """2012 style: WJ, the small province character, four digits and a digit or service letter."""
    last = _pick(rng, WJ_SERVICE) if rng.random() < 0.4 else _pick(rng, DIGITS)
    return "WJ" + _pick(rng, PROVINCES) + _digits(rng, 4) + last


def text_armed_police_2007(rng: np.random.Generator) -> str:
    """2007 style: WJ, the corps' two small digits (01-32), five digits."""
    return "WJ" + f"{int(rng.integers(1, 33)):02d}" + _digits(rng, 5)


# ---------------------------------------------------------------- layouts (mm)

SINGLE_X = (15.5, 72.5, 151.5, 208.5, 265.5, 322.5, 379.5)  # 45 mm boxes, 12 mm apart, 34 mm after the 2nd
EMBASSY_X = (15.5, 72.5, 129.5, 186.5, 265.5, 322.5, 379.5)  # 使 014 · 578: the gap after the 4th
NEW_ENERGY_X = (15.5, 69.5, 161.5, 213.5, 265.5, 317.5, 369.5, 421.5)  # 45 then 43 mm boxes, 9 mm apart
DOUBLE_BOTTOM_X = (27.5, 107.5, 187.5, 267.5, 347.5)  # 65 x 110 mm lower row of a 440 x 220 plate
MOTO_BOTTOM_X = (10.0, 51.0, 92.0, 133.0, 174.0)  # 36 x 74 mm lower row of a 220 x 140 plate


def single_row(text: str, ink: Rgb, red: dict[int, Rgb] | None = None, xs: tuple[float, ...] = SINGLE_X) -> list[Glyph]:
    red = red or {}
    return [Glyph(ch, (x, 25.0, 45.0, 90.0), red.get(i, ink)) for i, (ch, x) in enumerate(zip(text, xs, strict=True))]


def new_energy_row(text: str, ink: Rgb) -> list[Glyph]:
    return [Glyph(ch, (x, 25.0, 45.0 if i == 0 else 43.0, 90.0), ink)
            for i, (ch, x) in enumerate(zip(text, NEW_ENERGY_X, strict=True))]  # fmt: skip


def double_row(text: str, ink: Rgb, red: dict[int, Rgb] | None = None) -> list[Glyph]:
    """Province and office letter above (80 x 60 mm), five characters below (65 x 110 mm)."""
    red = red or {}
    top = [Glyph(text[0], (110.0, 15.0, 80.0, 60.0), red.get(0, ink)),
           Glyph(text[1], (250.0, 15.0, 80.0, 60.0), red.get(1, ink))]  # fmt: skip
    bottom = [Glyph(ch, (x, 90.0, 65.0, 110.0), red.get(i + 2, ink))
              for i, (ch, x) in enumerate(zip(text[2:], DOUBLE_BOTTOM_X, strict=True))]  # fmt: skip
    return top + bottom


def motorcycle_rows(text: str, ink: Rgb) -> list[Glyph]:
    top = [Glyph(text[0], (58.0, 10.0, 36.0, 38.0), ink), Glyph(text[1], (126.0, 10.0, 36.0, 38.0), ink)]
    bottom = [Glyph(ch, (x, 56.0, 36.0, 74.0), ink) for ch, x in zip(text[2:], MOTO_BOTTOM_X, strict=True)]
    return top + bottom


def armed_police_single(text: str, small_red: bool) -> list[Glyph]:
    """WJ in the first two boxes, the small characters in the separator's gap, five characters after."""
    small, serial = text[2:-5], text[-5:]
    glyphs = [Glyph("W", (15.5, 25.0, 45.0, 90.0), RED), Glyph("J", (72.5, 25.0, 45.0, 90.0), RED)]
    small_ink = RED if small_red else INK_BLACK
    if len(small) == 1:  # 2012: a province character, 26 x 40 mm, level with the tops of the others
        glyphs.append(Glyph(small, (121.5, 25.0, 26.0, 40.0), small_ink, small=True))
    else:  # 2007: two digits, 14 x 34 mm each
        glyphs += [Glyph(small[0], (120.0, 25.0, 14.0, 34.0), small_ink, small=True),
                   Glyph(small[1], (136.0, 25.0, 14.0, 34.0), small_ink, small=True)]  # fmt: skip
    return glyphs + [Glyph(ch, (x, 25.0, 45.0, 90.0), INK_BLACK) for ch, x in zip(serial, SINGLE_X[2:], strict=True)]


def armed_police_double(text: str, small_red: bool) -> list[Glyph]:
    small, serial = text[2:-5], text[-5:]
    glyphs = [Glyph("W", (105.0, 15.0, 70.0, 60.0), RED), Glyph("J", (190.0, 15.0, 70.0, 60.0), RED)]
    glyphs.append(Glyph(small, (275.0, 15.0, 45.0, 42.0), RED if small_red else INK_BLACK, small=True))
    return glyphs + [
        Glyph(ch, (x, 90.0, 65.0, 110.0), INK_BLACK) for ch, x in zip(serial, DOUBLE_BOTTOM_X, strict=True)
    ]


# ---------------------------------------------------------------- types


@dataclass(frozen=True)
class PlateType:
    name: str
    description: str
    size_mm: tuple[int, int]
    rows: int
    colour: Colour
    text: Callable[[np.random.Generator], str]
    layout: Callable[[str, np.random.Generator], list[Glyph]]
    background: Callable[[int, int], npt.NDArray[np.float32]]  # (width, height) px -> RGB float image
    frame: Rgb | None  # the raised border line's colour; None: no border line
    separator: tuple[float, float] | None  # the dot between the office letter and the serial, (x, y) mm


def plain(colour: Rgb) -> Callable[[int, int], npt.NDArray[np.float32]]:
    def fill(width: int, height: int) -> npt.NDArray[np.float32]:
        return np.broadcast_to(np.array(colour, np.float32), (height, width, 3)).copy()

    return fill


def green_gradient(width: int, height: int) -> npt.NDArray[np.float32]:
    """Small new-energy plates: near-white at the top to green at the bottom."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None] ** 0.8
    column = (1 - t) * np.array(GREEN_LIGHT, np.float32) + t * np.array(GREEN, np.float32)
    return np.broadcast_to(column, (height, width, 3)).copy()


def yellow_green(width: int, height: int) -> npt.NDArray[np.float32]:
    """Large new-energy plates: yellow behind the province and office letter, green behind the serial."""
    image = plain(GREEN)(width, height)
    image[:, : int(width * 137.0 / 480.0)] = YELLOW
    return image


def _learner(text: str, rng: np.random.Generator) -> list[Glyph]:
    return single_row(text, INK_BLACK, {6: RED if rng.random() < 0.5 else INK_BLACK})


def _military(text: str, rng: np.random.Generator) -> list[Glyph]:
    return single_row(text, INK_BLACK, {0: RED, 1: RED if rng.random() < 0.5 else INK_BLACK})


PLATE_TYPES: dict[str, PlateType] = {
    t.name: t
    for t in (
        PlateType("blue", "blue small car, 440x140", (440, 140), 1, "blue", text_ordinary,
                  lambda s, _: single_row(s, INK_WHITE), plain(BLUE), INK_WHITE, (134.5, 70.0)),
        PlateType("yellow_single", "yellow single-row (large vehicle front), 440x140", (440, 140), 1, "yellow",
                  text_ordinary, lambda s, _: single_row(s, INK_BLACK), plain(YELLOW), INK_BLACK, (134.5, 70.0)),
        PlateType("yellow_double", "yellow double-row (large vehicle rear), 440x220", (440, 220), 2, "yellow",
                  text_ordinary, lambda s, _: double_row(s, INK_BLACK), plain(YELLOW), INK_BLACK, (220.0, 45.0)),
        PlateType("yellow_motorcycle", "yellow double-row motorcycle, 220x140", (220, 140), 2, "yellow",
                  text_ordinary, lambda s, _: motorcycle_rows(s, INK_BLACK), plain(YELLOW), INK_BLACK, (110.0, 29.0)),
        PlateType("green_small", "green new-energy small car (gradient), 480x140", (480, 140), 1, "green",
                  text_new_energy_small, lambda s, _: new_energy_row(s, INK_BLACK), green_gradient, None, None),
        PlateType("green_large", "yellow-green new-energy large vehicle, 480x140", (480, 140), 1, "green",
                  text_new_energy_large, lambda s, _: new_energy_row(s, INK_BLACK), yellow_green, None, None),
        PlateType("police", "white police, red 警 suffix, 440x140", (440, 140), 1, "white",
                  text_with_suffix("警"), lambda s, _: single_row(s, INK_BLACK, {6: RED}), plain(WHITE), INK_BLACK,
                  (134.5, 70.0)),
        PlateType("armed_police", "white armed police 2012 (red WJ, small province), 440x140", (440, 140), 1,
                  "white", text_armed_police, lambda s, r: armed_police_single(s, r.random() < 0.5), plain(WHITE),
                  INK_BLACK, None),
        PlateType("armed_police_2007", "white armed police 2007 (WJ + small corps digits), 440x140", (440, 140), 1,
                  "white", text_armed_police_2007, lambda s, r: armed_police_single(s, r.random() < 0.5),
                  plain(WHITE), INK_BLACK, None),
        PlateType("armed_police_double", "white armed police double-row, 440x220", (440, 220), 2, "white",
                  text_armed_police, lambda s, r: armed_police_double(s, r.random() < 0.5), plain(WHITE), INK_BLACK,
                  None),
        PlateType("military", "white military (red letters), 440x140", (440, 140), 1, "white", text_military,
                  _military, plain(WHITE), INK_BLACK, (134.5, 70.0)),
        PlateType("hk_macau", "black Hong Kong / Macau (粤Z, 港/澳 suffix), 440x140", (440, 140), 1, "black",
                  text_hk_macau, lambda s, _: single_row(s, INK_WHITE), plain(BLACK), INK_WHITE, (134.5, 70.0)),
        PlateType("embassy", "black embassy (red 使 prefix), 440x140", (440, 140), 1, "black", text_embassy,
                  lambda s, _: single_row(s, INK_WHITE, {0: RED}, EMBASSY_X), plain(BLACK), INK_WHITE,
                  (248.5, 70.0)),
        PlateType("consulate", "black consulate (red 领 suffix), 440x140", (440, 140), 1, "black",
                  text_consulate, lambda s, _: single_row(s, INK_WHITE, {6: RED}), plain(BLACK), INK_WHITE,
                  (134.5, 70.0)),
        PlateType("learner", "yellow learner (学 suffix, red or black), 440x140", (440, 140), 1, "yellow",
                  text_with_suffix("学"), _learner, plain(YELLOW), INK_BLACK, (134.5, 70.0)),
        PlateType("trailer", "yellow trailer double-row (挂 suffix), 440x220", (440, 220), 2, "yellow",
                  text_with_suffix("挂"), lambda s, _: double_row(s, INK_BLACK), plain(YELLOW), INK_BLACK,
                  (220.0, 45.0)),
    )
}  # fmt: skip


# ---------------------------------------------------------------- drawing


def font_path() -> Path | None:
    """The CJK font the plates are drawn with (GATEBOX_PLATE_FONT overrides); None when none is installed."""
    override = os.environ.get("GATEBOX_PLATE_FONT")
    for candidate in (override, *FONT_CANDIDATES) if override else FONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    path = font_path()
    if path is None:
        raise FileNotFoundError(f"no CJK font found (tried {', '.join(FONT_CANDIDATES)}); install fonts-wqy-zenhei")
    return ImageFont.truetype(str(path), size)


CORNER_RADIUS = round(6 * PX_PER_MM)
GLYPH_EM = 192  # the size a glyph is drawn at before it is fitted to its box


@cache
def glyph_mask(char: str, width: int, height: int, small: bool = False) -> npt.NDArray[np.float32]:
    """The character's ink, 0..1, fitted to a width x height px box: stretched to fill it as the plate
    font's are, except characters much narrower than the box (1, J) which keep their shape."""
    cjk = ord(char) > 0x2E80
    # Zen Hei's strokes are thinner than the plate font's: thicken, more for Latin characters (whose
    # vertical strokes also survive the horizontal squeeze) and for the small WJ characters.
    stroke = round(GLYPH_EM * (0.02 if cjk else 0.03) * (1.6 if small else 1.0))
    canvas = Image.new("L", (GLYPH_EM * 2, GLYPH_EM * 2), 0)
    ImageDraw.Draw(canvas).text((GLYPH_EM // 2, GLYPH_EM // 4), char, font=_font(GLYPH_EM), fill=255,
                                stroke_width=stroke, stroke_fill=255)  # fmt: skip
    ink = np.asarray(canvas)
    ys, xs = np.nonzero(ink > 16)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255.0
    ink_aspect, box_aspect = ink.shape[1] / ink.shape[0], width / height
    out = np.zeros((height, width), np.float32)
    if ink_aspect < 0.6 * box_aspect:
        narrow = max(1, round(height * ink_aspect * 1.25))
        left = (width - narrow) // 2
        out[:, left : left + narrow] = cv2.resize(ink, (narrow, height), interpolation=cv2.INTER_AREA)
    else:
        out[:] = cv2.resize(ink, (width, height), interpolation=cv2.INTER_AREA)
    return out


def _rounded_mask(width: int, height: int, radius: int, inset: int = 0) -> npt.NDArray[np.float32]:
    mask = np.zeros((height, width), np.uint8)
    x1, y1, x2, y2 = inset, inset, width - 1 - inset, height - 1 - inset
    cv2.rectangle(mask, (x1 + radius, y1), (x2 - radius, y2), 255, -1)
    cv2.rectangle(mask, (x1, y1 + radius), (x2, y2 - radius), 255, -1)
    for cx, cy in ((x1 + radius, y1 + radius), (x2 - radius, y1 + radius), (x1 + radius, y2 - radius),
                   (x2 - radius, y2 - radius)):  # fmt: skip
        cv2.circle(mask, (cx, cy), radius, 255, -1, cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def _paint(image: npt.NDArray[np.float32], mask: npt.NDArray[np.float32], colour: Rgb) -> None:
    image *= 1.0 - mask[..., None]
    image += mask[..., None] * np.array(colour, np.float32)


@cache
def _blank(kind: str) -> npt.NDArray[np.float32]:
    """The plate without its characters (background, border line, rivets, separator dot), RGB float."""
    spec = PLATE_TYPES[kind]
    width, height = (round(v * PX_PER_MM) for v in spec.size_mm)
    image = spec.background(width, height)
    if spec.frame is not None:  # a raised border line 1.5 mm wide, 2.5 mm in from the edge
        outer = _rounded_mask(width, height, CORNER_RADIUS - 2, round(2.5 * PX_PER_MM))
        inner = _rounded_mask(width, height, CORNER_RADIUS - 4, round(4.0 * PX_PER_MM))
        _paint(image, outer - inner, spec.frame)
    for rivet_x in (0.22, 0.78):  # the two fixing rivets in the top margin
        rivet = np.zeros((height, width), np.float32)
        centre = (round(rivet_x * width), round(11 * PX_PER_MM))
        cv2.circle(rivet, centre, round(4 * PX_PER_MM), 0.35, -1, cv2.LINE_AA)
        cv2.circle(rivet, centre, round(2.5 * PX_PER_MM), 0.6, -1, cv2.LINE_AA)
        _paint(image, rivet, (150, 150, 150))
    if spec.separator is not None:
        dot = np.zeros((height, width), np.float32)
        cv2.circle(dot, (round(spec.separator[0] * PX_PER_MM), round(spec.separator[1] * PX_PER_MM)),
                   round(5 * PX_PER_MM), 1.0, -1, cv2.LINE_AA)  # fmt: skip
        _paint(image, dot, spec.frame or INK_BLACK)
    image.flags.writeable = False
    return image


@cache
def _outline(width: int, height: int) -> npt.NDArray[np.float32]:
    mask = _rounded_mask(width, height, CORNER_RADIUS)
    mask.flags.writeable = False
    return mask


def render(kind: str, rng: np.random.Generator, text: str | None = None) -> Plate:
    """A plate of type `kind` with a random valid text (or `text`), drawn at PX_PER_MM, BGR."""
    spec = PLATE_TYPES[kind]
    text = text if text is not None else spec.text(rng)
    image = _blank(kind).copy()
    for glyph in spec.layout(text, rng):
        x, y, w, h = (round(v * PX_PER_MM) for v in glyph.box)
        _paint(image[y : y + h, x : x + w], glyph_mask(glyph.char, w, h, glyph.small), glyph.colour)
    bgr = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    height, width = bgr.shape[:2]
    return Plate(kind, text, spec.colour, spec.rows, spec.size_mm, bgr, _outline(width, height))


def type_seed(kind: str) -> int:
    """A stable number per plate type (Python's hash() of a str changes per process)."""
    return zlib.crc32(kind.encode())
