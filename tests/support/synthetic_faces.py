"""A synthetic face for pipeline tests in process: frames of one blue face on a grey gradient, and
stand-ins for the detector (finds the drawn face), the landmarks (a frontal face) and the embedder
(the enrolled subject's embedding while the test says the face is recognisable, nobody's otherwise).
With `recognition.embedding_workers: 0` the pipeline embeds in its own thread, so a test can switch
recognisability frame by frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.protocol.embedding import DLIB_EMBEDDER
from edge.types import Detections

HEIGHT, WIDTH, FACE = 480, 640, 80
ENROLLED = np.ones(DLIB_EMBEDDER.dim, np.float32) / np.sqrt(DLIB_EMBEDDER.dim)  # the enrolled subject's face
STRANGER = -ENROLLED  # 2.0 away: nobody


def image(top: int) -> npt.NDArray[np.uint8]:
    """A grey vertical gradient (so crops at different heights differ) with one blue face, textured in
    green so the tracker's shading check has something to correlate."""
    picture = np.repeat(np.linspace(0, 180, HEIGHT, dtype=np.uint8)[:, None, None], WIDTH, 1).repeat(3, 2)
    y, x = top, (WIDTH - FACE) // 2
    texture = np.add.outer(np.arange(FACE), np.arange(FACE)) % 64 * 2
    picture[y : y + FACE, x : x + FACE] = np.stack([np.full((FACE, FACE), 230), texture, np.full((FACE, FACE), 20)], 2)
    return picture


class BlueFace:
    """Finds the one drawn face: where blue stands far above red (the grey background never does)."""

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        mask = image_bgr[:, :, 0].astype(int) - image_bgr[:, :, 2] > 100
        if not mask.any():
            return Detections()
        ys, xs = np.nonzero(mask)
        return Detections.from_boxes([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], [0.99])


class _Shape:
    def __init__(self, rect: Any) -> None:
        left, top, size = rect.left(), rect.top(), rect.width()
        spots = [(0.2, 0.35), (0.35, 0.35), (0.65, 0.35), (0.8, 0.35), (0.5, 0.6)]  # eyes' corners, nose: frontal
        self._points = [_Point(left + fx * size, top + fy * size) for fx, fy in spots]

    def parts(self) -> list[_Point]:
        return self._points


@dataclass(frozen=True)
class _Point:
    x: float
    y: float


class Recognised:
    """The enrolled subject's embedding while `recognisable`, nobody's otherwise."""

    spec, recipe = DLIB_EMBEDDER, None

    def __init__(self) -> None:
        self.recognisable = False

    def landmarks(self, gray: Any, rect: Any) -> _Shape:
        return _Shape(rect)

    def embed_crops(self, crops: list[Any], boxes: list[Any]) -> npt.NDArray[np.float32]:
        return np.stack([ENROLLED if self.recognisable else STRANGER] * len(crops))
