"""Reads the text of a cut-out plate with the PP-OCRv4 recogniser (ONNX, from rapidocr-onnxruntime).

The recogniser knows 6,623 characters; a plate uses 70. Decoding is restricted to the plate
alphabet (every other class is masked before the CTC argmax), which removes the look-alike Chinese
characters a general OCR would pick, and the result is checked against the plate grammar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.plates.grammar import ALPHABET, normalise, plate_kind, repair

INPUT_HEIGHT = 48
MAX_WIDTH = 320


@dataclass(frozen=True)
class PlateRead:
    text: str
    confidence: float  # mean probability of the characters read
    kind: str | None  # ordinary / new_energy; None when the text breaks the plate grammar

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
        allowed = np.zeros(len(self._classes), bool)
        allowed[0] = True
        for i, ch in enumerate(self._classes):
            allowed[i] |= ch != "" and ch in ALPHABET
        self._masked = ~allowed
        self._input = self._session.get_inputs()[0].name

    def read(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead:
        if crop_bgr.ndim == 2:
            crop_bgr = cv2.cvtColor(crop_bgr, cv2.COLOR_GRAY2BGR)
        height, width = crop_bgr.shape[:2]
        resized_width = max(8, min(MAX_WIDTH, math.ceil(INPUT_HEIGHT * width / max(1, height))))
        image = cv2.resize(crop_bgr, (resized_width, INPUT_HEIGHT)).astype(np.float32) / 127.5 - 1.0
        batch = np.zeros((1, 3, INPUT_HEIGHT, MAX_WIDTH), np.float32)
        batch[0, :, :, :resized_width] = image.transpose(2, 0, 1)
        (logits,) = self._session.run(None, {self._input: batch})
        probs = logits[0]
        probs[:, self._masked] = 0.0
        best = probs.argmax(axis=1)
        chars, confidences, previous = [], [], 0
        for step, index in enumerate(best.tolist()):
            if index != 0 and index != previous:
                chars.append(self._classes[index])
                confidences.append(float(probs[step, index]))
            previous = index
        text = repair(normalise("".join(chars)))
        return PlateRead(text, float(np.mean(confidences)) if confidences else 0.0, plate_kind(text))
