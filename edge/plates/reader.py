"""Reads the text of a cut-out plate with the PP-OCRv4 recogniser (ONNX, from rapidocr-onnxruntime).

The recogniser knows 6,623 characters; a plate uses 70. Decoding is restricted to the plate
alphabet (every other class is masked before the CTC argmax), which removes the look-alike Chinese
characters a general OCR would pick, and the result is checked against the plate grammar.
Double-row plates (yellow trucks, motorcycles) are split into their rows, each read with the
characters its row may hold, and joined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.protocol.plate_grammar import ALPHABET, LETTERS, PROVINCES, SERIAL, SUFFIXES, normalise, plate_kind, repair

INPUT_HEIGHT = 48
SINGLE_ROW_MIN_ASPECT = 2.6  # single-row plates are ~3.1x wider than high, double-row ~1.9x
MAX_WIDTH = 320


@dataclass(frozen=True)
class PlateRead:
    text: str
    confidence: float  # mean probability of the characters read
    kind: str | None  # ordinary / new_energy; None when the text breaks the plate grammar
    colour: str | None = None  # blue, yellow, green, white, black

    @property
    def valid(self) -> bool:
        return self.kind is not None


class PlateTextReader:
    def __init__(self, model: Path, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        characters = self._session.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._classes = ["", *characters, " "]  # CTC blank first, space last (PaddleOCR's layout)
        self._masked = self._mask(ALPHABET)
        self._masked_top = self._mask(PROVINCES + LETTERS)  # a double-row plate's upper row
        self._masked_bottom = self._mask(SERIAL + SUFFIXES)  # and its lower row
        self._input = self._session.get_inputs()[0].name

    def _mask(self, characters: str) -> npt.NDArray[np.bool_]:
        """True for every class the decoder must not pick."""
        allowed = np.array([i == 0 or (ch != "" and ch in characters) for i, ch in enumerate(self._classes)])
        return ~allowed

    def read(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        if crop_bgr.ndim == 2:
            crop_bgr = cv2.cvtColor(crop_bgr, cv2.COLOR_GRAY2BGR)
        height, width = crop_bgr.shape[:2]
        single = self._read_row(crop_bgr, self._masked)
        if width >= SINGLE_ROW_MIN_ASPECT * height:
            return single
        # Squarish: a double-row plate, or a single-row one cut loosely. Read both ways; a valid
        # read beats an invalid one, then the more confident wins.
        double = self._read_double_row(crop_bgr)
        return max((single, double), key=lambda r: (r.valid, r.confidence))

    def read_with_colour(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        read = self.read(crop_bgr)
        return PlateRead(read.text, read.confidence, read.kind, plate_colour(crop_bgr))

    def _read_double_row(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        """Yellow trucks and motorcycles: province and letter above, the serial below; read apart, joined."""
        height = crop_bgr.shape[0]
        top = self._read_row(crop_bgr[: int(0.40 * height)], self._masked_top)
        bottom = self._read_row(crop_bgr[int(0.30 * height) :], self._masked_bottom)
        text = repair(top.text + bottom.text)
        confidence = min(top.confidence, bottom.confidence)
        return PlateRead(text, confidence, plate_kind(text))

    def _read_row(self, crop_bgr: npt.NDArray[np.uint8], masked: npt.NDArray[np.bool_]) -> PlateRead:
        height, width = crop_bgr.shape[:2]
        if height == 0 or width == 0:
            return PlateRead("", 0.0, None)
        resized_width = max(8, min(MAX_WIDTH, math.ceil(INPUT_HEIGHT * width / max(1, height))))
        image = cv2.resize(crop_bgr, (resized_width, INPUT_HEIGHT)).astype(np.float32) / 127.5 - 1.0
        batch = np.zeros((1, 3, INPUT_HEIGHT, MAX_WIDTH), np.float32)
        batch[0, :, :, :resized_width] = image.transpose(2, 0, 1)
        (logits,) = self._session.run(None, {self._input: batch})
        probs = logits[0]
        probs[:, masked] = 0.0
        best = probs.argmax(axis=1)
        chars, confidences, previous = [], [], 0
        for step, index in enumerate(best.tolist()):
            if index != 0 and index != previous:
                chars.append(self._classes[index])
                confidences.append(float(probs[step, index]))
            previous = index
        text = repair(normalise("".join(chars)))
        return PlateRead(text, float(np.mean(confidences)) if confidences else 0.0, plate_kind(text))


def plate_colour(crop_bgr: npt.NDArray[np.uint8]) -> str | None:
    """The plate's background colour from the hue of its saturated pixels (characters are white or
    black and mostly unsaturated): blue, yellow, green; white or black when little is saturated."""
    if crop_bgr.size == 0:
        return None
    if crop_bgr.ndim == 2 or crop_bgr.shape[2] == 1:
        return None  # no colour in a grey image
    channels = crop_bgr.astype(np.int16)
    if np.abs(channels[..., 0] - channels[..., 1]).max() < 8 and np.abs(channels[..., 1] - channels[..., 2]).max() < 8:
        return None  # a grey image stored as colour (a night-mode camera)
    hsv = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    saturated = hsv[(hsv[:, 1] > 80) & (hsv[:, 2] > 60)]
    if len(saturated) < 0.25 * len(hsv):
        return "white" if np.median(hsv[:, 2]) > 120 else "black"
    hue = np.median(saturated[:, 0])  # OpenCV hue: 0-179
    if 95 <= hue <= 135:
        return "blue"
    if 15 <= hue < 35:
        return "yellow"
    if 35 <= hue < 95:
        return "green"
    return None
