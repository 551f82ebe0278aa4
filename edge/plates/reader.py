"""Reads the text of a cut-out plate with the PP-OCRv4 recogniser (ONNX, from rapidocr-onnxruntime).

The recogniser knows 6,623 characters; a plate uses 70. Decoding is restricted to the plate
alphabet (every other class is masked before the CTC argmax), which removes the look-alike Chinese
characters a general OCR would pick, and the result is checked against the plate grammar
(`edge.protocol.plate_grammar`, one per plate type). Double-row plates (yellow trucks, motorcycles,
trailers, WJ) are split into their rows, each read with the characters its row may hold, and joined.

Where the plain read breaks the grammar, what the recogniser is known to miss is looked for: a type
character (警 学 挂 领 港 澳 last, 使 first) where it saw a character but the plate alphabet held
nothing it liked there, or that the plate's colour calls for (`read_with_colour`); the small
characters of a WJ plate (a province, or two corps digits, half the height of the others), read on
their own from the gap between WJ and the serial; and a double-row plate's upper row, fitted to the
few layouts it may hold. The colour (`plate_colour`) comes from the characters' polarity and the
background's saturation and chroma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.protocol.plate_grammar import (
    ALPHABET,
    DIGITS,
    LETTERS,
    OFFICE,
    PROVINCES,
    SERIAL,
    SUFFIXES,
    normalise,
    plate_kind,
    repair,
)

INPUT_HEIGHT = 48
SINGLE_ROW_MIN_ASPECT = 2.6  # single-row plates are ~3.1x wider than high, double-row ~2 (motorcycles ~1.6)
MAX_WIDTH = 320
# A CTC step where blank is below this is one where the recogniser saw a character.
SEEN = 0.5
# The least probability a type character needs, at a step where a character was seen, to be read
# there: on the rendered plates of every type (benchmarks/plate_synth, seed 1, not the seed the figures
# are reported on) the right one scored 0.001-0.19 and a wrong one never passed 0.001 where a
# character was seen.
TYPE_CHARACTER_MIN_P = 1e-3
# The type characters a plate of each colour may be missing (`PlateTextReader._completed`).
TYPE_CHARACTERS_BY_COLOUR = {"white": "警", "black": "领港澳使"}
# The upper row of a double-row plate: province and office letter, or WJ and its small characters.
UPPER_ROWS = ((PROVINCES, OFFICE), ("W", "J", PROVINCES), ("W", "J", DIGITS, DIGITS))
# A character fitted to a row's layout (`PlateTextReader._fit`) needs at least this probability.
FIT_MIN_P = 0.1
# A WJ plate's small province character is read only when the recogniser gives it this much on its own.
SMALL_PROVINCE_MIN_P = 0.1
# Is a plate's background coloured? Its median HSV saturation and Lab chroma (|a*, b*|), from the
# distributions over the 500 real LPRNet crops (blue) and rendered plates of every type under the
# camera's white balance off by up to 15 % a channel, night gain and dirt (benchmarks/plate_synth):
# behind white characters, black backgrounds reach a saturation of 75 (dark pixels turn any cast into
# saturation) but a chroma of 13, and the real blue plates fall under a saturation of 48 or a chroma of
# 6 in 6 of 500. Behind black characters, a white plate under the warmest cast reaches 70 with a
# yellow hue and 56 with a green one; yellow plates start at 158, green ones at 77 (1st percentiles).
CHROMATIC_MIN_SATURATION = 48  # behind white characters: blue, not black
CHROMATIC_MIN_SATURATION_DARK_INK = 67  # behind black characters, a green (or blue) hue: not white
CHROMATIC_MIN_SATURATION_YELLOW = 115  # behind black characters, a yellow hue: not a white plate in warm light
CHROMATIC_MIN_CHROMA = 6
# A crop whose channels never differ by more than this is a grey image stored as colour (a night-mode
# camera; a grey JPEG decodes to equal channels give or take rounding): no colour can be told. A colour
# camera's black-and-white plate still shows its white balance and noise on its white characters.
GREY_MAX_DIFFERENCE = 2
COLOUR_HEIGHT = 48  # crops are told their colour at most this high


@dataclass(frozen=True)
class PlateRead:
    text: str
    confidence: float  # mean probability of the characters read
    kind: str | None  # a grammar kind (ordinary, new_energy, police, ...); None when the text breaks the grammar
    colour: str | None = None  # blue, yellow, green, white, black

    @property
    def valid(self) -> bool:
        return self.kind is not None


@dataclass(frozen=True)
class _Row:
    """One text row as the recogniser decoded it."""

    text: str  # as decoded (normalised, not repaired)
    steps: list[int]  # the CTC step of each character
    confidences: list[float]
    probs: npt.NDArray[np.float32]  # (steps, classes), unmasked
    image_steps: int  # the steps that cover the image (the rest is padding)
    step_px: float  # image pixels (of the row as given) per step

    def read(self) -> PlateRead:
        text = repair(self.text)
        return PlateRead(text, float(np.mean(self.confidences)) if self.confidences else 0.0, plate_kind(text))


class PlateTextReader:
    def __init__(self, model: Path, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        characters = self._session.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._classes = ["", *characters, " "]  # CTC blank first, space last (PaddleOCR's layout)
        self._index = {ch: i for i, ch in enumerate(self._classes) if ch}
        self._masked = self._mask(ALPHABET)
        self._masked_top = self._mask(PROVINCES + LETTERS + DIGITS)  # a double-row plate's upper row (WJ too)
        self._masked_bottom = self._mask(SERIAL + SUFFIXES)  # and its lower row
        self._masked_digits = self._mask(DIGITS)
        self._province_classes = np.array([self._index[ch] for ch in PROVINCES if ch in self._index])
        self._input = self._session.get_inputs()[0].name

    def _mask(self, characters: str) -> npt.NDArray[np.bool_]:
        """True for every class the decoder must not pick."""
        allowed = np.array([i == 0 or (ch != "" and ch in characters) for i, ch in enumerate(self._classes)])
        return ~allowed

    def read(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        if crop_bgr.ndim == 2:
            crop_bgr = cv2.cvtColor(crop_bgr, cv2.COLOR_GRAY2BGR)
        height, width = crop_bgr.shape[:2]
        single = self.read_single_row(crop_bgr)
        if width >= SINGLE_ROW_MIN_ASPECT * height or single.valid:
            return single
        # Squarish: a double-row plate, or a single-row one seen at an angle (read validly above: two
        # rows squeezed into one line do not make a plate). Read as two rows too; a valid read beats
        # an invalid one, then the more confident wins.
        return max((single, self.read_double_row(crop_bgr)), key=lambda r: (r.valid, r.confidence))

    def read_with_colour(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        read = self.read(crop_bgr)
        colour = plate_colour(crop_bgr)
        text = read.text
        if not read.valid and colour in TYPE_CHARACTERS_BY_COLOUR:
            text = self._completed(crop_bgr, text, colour) or text
        return PlateRead(text, read.confidence, plate_kind(text), colour)

    def _completed(self, crop_bgr: npt.NDArray[np.uint8], text: str, colour: str) -> str | None:
        """A read one type character short, completed from the plate's colour: a white plate with a
        province is a police plate (警 last), a black one a consulate (领 last), Hong Kong / Macau (粤Z, 港
        or 澳 last: the one the recogniser likes better) or embassy plate (使 first, then six digits). The
        red characters are the ones the recogniser most often loses, and no other plate of these colours
        reads as the rest."""
        joined = [joined for char in TYPE_CHARACTERS_BY_COLOUR[colour] for joined in (text + char, char + text)]
        if colour == "black" and text.startswith("Z"):  # 粤Z: the province lost with the type character
            joined += ["粤" + text + char for char in "港澳"]
        candidates = [fixed for candidate in joined if plate_kind(fixed := repair(candidate))]
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        probs = self._decode(crop_bgr, self._masked).probs
        return max(candidates, key=lambda c: max(float(probs[:, self._index[ch]].max()) for ch in c if ch in SUFFIXES))

    def read_single_row(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        row = self._decode(crop_bgr, self._masked)
        read = row.read()
        if read.valid or not row.steps:
            return read
        for rescued in (self._with_type_character(row), self._with_small_characters(crop_bgr, row)):
            if rescued is not None:
                return PlateRead(rescued, read.confidence, plate_kind(rescued))
        return read

    def read_double_row(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        """Province and letter (or WJ and its small characters) above, the serial below; read apart, joined.
        The upper row holds one of a few layouts, so it is fitted to them (`_fit`) rather than read freely:
        its characters are half the height of the serial's, and the free read often drops or adds one."""
        height = crop_bgr.shape[0]
        upper = self._decode(crop_bgr[: int(0.40 * height)], self._masked_top)
        bottom = self._decode(crop_bgr[int(0.30 * height) :], self._masked_bottom).read()
        fits = [fit for layout in UPPER_ROWS if (fit := self._fit(upper, layout)) is not None]
        top_text, top_confidence = upper.text, upper.read().confidence
        if fits and not plate_kind(repair(top_text + bottom.text)):
            top_text, top_confidence = max(fits)[1:]
        text = repair(top_text + bottom.text)
        return PlateRead(text, min(top_confidence, bottom.confidence), plate_kind(text))

    def _fit(self, row: _Row, layout: tuple[str, ...]) -> tuple[float, str, float] | None:
        """The best reading of `row` as exactly `layout` (the characters each position may hold): CTC's
        best path through blanks and one run of steps per position (Viterbi), each position's character
        the one its steps score highest. Returns (the path's log-probability, the text, the least
        probability of a character in it), or None when a character scores under `FIT_MIN_P`."""
        steps, positions = row.image_steps, len(layout)
        if steps < positions:
            return None
        log = np.log(row.probs[:steps] + 1e-9)
        classes = [self._classes_of(chars) for chars in layout]
        states = 2 * positions + 1  # blank, position 0, blank, position 1, ..., blank
        emit = np.empty((steps, states))
        emit[:, 0::2] = log[:, :1]
        emit[:, 1::2] = np.stack([log[:, c].max(axis=1) for c in classes], axis=1)
        score = np.full(states, -np.inf)
        score[:2] = emit[0, :2]
        back = np.zeros((steps, states), np.int64)
        skip_ok = np.zeros(states, bool)
        skip_ok[3::2] = True  # from one position straight to the next, no blank between
        for t in range(1, steps):
            moves = np.full((3, states), -np.inf)
            moves[0] = score
            moves[1, 1:] = score[:-1]
            moves[2, 2:] = np.where(skip_ok[2:], score[:-2], -np.inf)
            back[t] = moves.argmax(axis=0)
            score = moves.max(axis=0) + emit[t]
        state = states - 1 if score[-1] >= score[-2] else states - 2
        total = float(score[state])
        owner = np.empty(steps, np.int64)
        for t in range(steps - 1, -1, -1):
            owner[t] = state
            state -= back[t, state]
        text, least = "", 1.0
        for k, allowed in enumerate(classes):
            mine = np.flatnonzero(owner == 2 * k + 1)
            if len(mine) == 0:
                return None
            sums = row.probs[mine][:, allowed].sum(axis=0)
            best = int(allowed[sums.argmax()])
            least = min(least, float(row.probs[mine, best].max()))
            text += self._classes[best]
        return (total, text, least) if least >= FIT_MIN_P else None

    def _classes_of(self, characters: str) -> npt.NDArray[np.int64]:
        return np.array([self._index[ch] for ch in characters if ch in self._index], np.int64)

    def _decode(self, crop_bgr: npt.NDArray[np.uint8], masked: npt.NDArray[np.bool_]) -> _Row:
        height, width = crop_bgr.shape[:2]
        if height == 0 or width == 0:
            return _Row("", [], [], np.zeros((0, len(self._classes)), np.float32), 0, 1.0)
        resized_width = max(8, min(MAX_WIDTH, math.ceil(INPUT_HEIGHT * width / max(1, height))))
        image = cv2.resize(crop_bgr, (resized_width, INPUT_HEIGHT)).astype(np.float32) / 127.5 - 1.0
        batch = np.zeros((1, 3, INPUT_HEIGHT, MAX_WIDTH), np.float32)
        batch[0, :, :, :resized_width] = image.transpose(2, 0, 1)
        (logits,) = self._session.run(None, {self._input: batch})
        probs = logits[0]
        input_px_per_step = MAX_WIDTH / probs.shape[0]
        masked_probs = probs.copy()
        masked_probs[:, masked] = 0.0
        best = masked_probs.argmax(axis=1)
        chars, steps, confidences, previous = [], [], [], 0
        for step, index in enumerate(best.tolist()):
            if index != 0 and index != previous:
                chars.append(self._classes[index])
                steps.append(step)
                confidences.append(float(masked_probs[step, index]))
            previous = index
        image_steps = min(probs.shape[0], math.ceil(resized_width / input_px_per_step))
        step_px = input_px_per_step * width / resized_width
        return _Row(normalise("".join(chars)), steps, confidences, probs, image_steps, step_px)

    def _with_type_character(self, row: _Row) -> str | None:
        """The read with the type character the grammar needs before or after it, where the recogniser
        saw a character (blank under `SEEN`) but nothing of the plate alphabet; None if there is none."""
        best: tuple[float, str] | None = None
        seen = row.probs[: row.image_steps, 0] < SEEN
        for char in SUFFIXES:
            index = self._index.get(char)
            if index is None:
                continue
            for candidate, steps in ((row.text + char, range(row.steps[-1] + 1, row.image_steps)),
                                     (char + row.text, range(0, row.steps[0]))):  # fmt: skip
                candidate = repair(candidate)
                looked = [s for s in steps if seen[s]]
                if not plate_kind(candidate) or not looked:
                    continue
                p = float(row.probs[looked, index].max())
                if p >= TYPE_CHARACTER_MIN_P and (best is None or p > best[0]):
                    best = (p, candidate)
        return best[1] if best else None

    def _with_small_characters(self, crop_bgr: npt.NDArray[np.uint8], row: _Row) -> str | None:
        """A WJ plate read without its small characters (WJ + five): read them from the gap between J and
        the serial, where the plate has ink only in its upper half."""
        if len(row.text) != 7 or not row.text.startswith("WJ"):
            return None
        height = crop_bgr.shape[0]
        left, right = int(row.steps[1] * row.step_px), int((row.steps[2] + 1) * row.step_px)
        ink = _ink_mask(crop_bgr)
        below = ink[int(0.62 * height) : int(0.8 * height), left:right].mean(axis=0)
        free = np.flatnonzero(below < 0.05)  # columns with no ink in the lower part: the small characters'
        if len(free) == 0:
            return None
        runs = np.split(free, np.flatnonzero(np.diff(free) > 1) + 1)
        run = max(runs, key=len)
        region = crop_bgr[int(0.1 * height) : int(0.55 * height), left + run[0] : left + run[-1] + 1]
        if region.size == 0:
            return None
        # The small characters are narrow and tall; alone in a crop the recogniser takes two of them for one
        # Chinese character. Widened and framed with the plate's own background they read as text.
        region = cv2.resize(region, None, fx=2.2, fy=1.0, interpolation=cv2.INTER_CUBIC)
        pixels = region.reshape(-1, 3)
        background = np.median(pixels[np.argsort(pixels.sum(axis=1))[len(pixels) // 2 :]], axis=0)
        side = region.shape[0]
        framed = cv2.copyMakeBorder(region, side // 4, side // 4, side // 2, side // 2, cv2.BORDER_CONSTANT,
                                    value=[int(v) for v in background])  # fmt: skip
        digits = self._decode(framed, self._masked_digits)
        for small in (digits.text if len(digits.text) == 2 else None, self._small_province(digits)):
            if small is not None and plate_kind(text := "WJ" + small + row.text[2:]):
                return text
        return None

    def _small_province(self, row: _Row) -> str | None:
        """The province the recogniser likes best anywhere in `row`, if it likes it enough."""
        scores = row.probs[: row.image_steps][:, self._province_classes]
        if scores.size == 0 or scores.max() < SMALL_PROVINCE_MIN_P:
            return None
        return self._classes[self._province_classes[scores.max(axis=0).argmax()]]


def _ink_mask(crop_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Pixels unlike the plate's background (its median colour), split from it by Otsu's threshold."""
    background = np.median(crop_bgr.reshape(-1, 3), axis=0)
    distance = np.abs(crop_bgr.astype(np.float32) - background).max(axis=2).astype(np.uint8)
    threshold, _ = cv2.threshold(distance, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return distance > threshold


def plate_colour(crop_bgr: npt.NDArray[np.uint8]) -> str | None:
    """The plate's background colour: blue, yellow, green, white or black; None for a grey image.

    GA 36-2018 pairs each background with its characters' ink: white on blue and black, black on
    yellow, green and white. So the ink's polarity (lighter or darker than the background) is read
    first, from the skew of the plate's detail (characters are the minority: the long tail of the
    brightness left after the lighting is blurred away), which holds under colour casts and shadows;
    then whether the background is coloured at all (saturation and chroma), and its hue only to tell
    yellow from green.
    """
    if crop_bgr.size == 0 or crop_bgr.ndim == 2 or crop_bgr.shape[2] == 1:
        return None  # no colour in a grey image
    channels = crop_bgr.astype(np.int16)
    spread = max(np.abs(channels[..., 0] - channels[..., 1]).max(), np.abs(channels[..., 1] - channels[..., 2]).max())
    if spread <= GREY_MAX_DIFFERENCE:
        return None  # a grey image stored as colour (a night-mode camera)
    height, width = crop_bgr.shape[:2]
    if height > COLOUR_HEIGHT:  # colour needs no detail: a bounded size keeps the blur below cheap
        width = max(1, round(width * COLOUR_HEIGHT / height))
        height = COLOUR_HEIGHT
        crop_bgr = cv2.resize(crop_bgr, (width, height), interpolation=cv2.INTER_AREA)
    inner = crop_bgr[height // 10 : height - height // 10, width // 25 : width - width // 25]  # less frame and holder
    if inner.size == 0:
        return None
    gray = cv2.cvtColor(inner, cv2.COLOR_BGR2GRAY).astype(np.float32)
    detail = gray - cv2.GaussianBlur(gray, (0, 0), max(1.0, inner.shape[0] / 4))
    spread = float(detail.std()) + 1e-6
    dark_ink = float(np.mean((detail / spread) ** 3)) < 0
    background = np.abs(detail) <= np.median(np.abs(detail))  # the flattest half: no strokes, no edges
    hsv = cv2.cvtColor(inner, cv2.COLOR_BGR2HSV)[background]
    lab = cv2.cvtColor(inner, cv2.COLOR_BGR2LAB)[background].astype(np.float32)
    chroma = float(np.hypot(np.median(lab[:, 1]) - 128, np.median(lab[:, 2]) - 128))
    saturation = np.median(hsv[:, 1])
    if not dark_ink:
        return "blue" if saturation >= CHROMATIC_MIN_SATURATION and chroma >= CHROMATIC_MIN_CHROMA else "black"
    hue = np.median(hsv[:, 0])  # OpenCV hue: 0-179
    if 35 <= hue < 95:
        colour, least = "green", CHROMATIC_MIN_SATURATION_DARK_INK
    elif 95 <= hue < 135:
        colour, least = "blue", CHROMATIC_MIN_SATURATION_DARK_INK  # a blue plate whose polarity the light hid
    else:
        colour, least = "yellow", CHROMATIC_MIN_SATURATION_YELLOW
    return colour if saturation >= least and chroma >= CHROMATIC_MIN_CHROMA else "white"
