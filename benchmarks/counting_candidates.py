"""Person finders that ship with opencv-python-headless, measured against the shipped ones by
`benchmarks/counting.py --methods ...` (issue 18) and not shipped: on the benchmark clips each was
slower and counted fewer crossings than `motion` (docs/benchmarks.md, "Counting").

Each is a `PersonDetector` (`edge.counting.stage`): run by the people stage on every 3rd frame, in the
window around what moved, as the shipped `hog` is.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from edge.counting.stage import PersonDetector
from edge.detectors.hog_people import people
from edge.types import Detections


class UpscaledHog:
    """HOG on the window upscaled `factor` times, so people under HOG's window height are found:
    the default 64x128 people detector, or Daimler's 48x96 one (trained on smaller pedestrians)."""

    def __init__(self, factor: float, daimler: bool = False, min_confidence: float = 0.5) -> None:
        if daimler:
            self._hog = cv2.HOGDescriptor((48, 96), (16, 16), (8, 8), (8, 8), 9)
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDaimlerPeopleDetector())
            self._window = (48, 96)
        else:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
            self._window = (64, 128)
        self._factor = factor
        self._min_confidence = min_confidence

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        image = cv2.resize(image_bgr, None, fx=self._factor, fy=self._factor) if self._factor != 1 else image_bgr
        if image.shape[0] < self._window[1] or image.shape[1] < self._window[0]:
            return people(np.empty((0, 4), np.float32), np.empty(0, np.float32))
        rects, weights = self._hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
        scores = np.asarray(weights, np.float32).reshape(-1)
        boxes = np.asarray(rects, np.float32).reshape(-1, 4)
        keep = scores >= self._min_confidence
        boxes, scores = boxes[keep], scores[keep]
        if len(boxes):
            chosen = np.asarray(cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self._min_confidence, 0.4))
            chosen = chosen.astype(int).reshape(-1)
            boxes, scores = boxes[chosen], scores[chosen]
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1) / self._factor
        return people(xyxy.astype(np.float32), scores)


class HaarBodies:
    """One of OpenCV's Haar cascades for bodies (`haarcascade_fullbody.xml`, `haarcascade_upperbody.xml`)."""

    def __init__(self, cascade: str) -> None:
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)
        if self._cascade.empty():
            raise FileNotFoundError(cascade)

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        rects = np.asarray(self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3), np.float32)
        rects = rects.reshape(-1, 4)
        xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return people(xyxy, np.ones(len(xyxy), np.float32))


# Name -> a new detector. 2x brings campus people (60-90 px) over HOG's 128 px; Daimler's 96 px
# window needs 1.5x for the same.
CANDIDATES: dict[str, Callable[[], PersonDetector]] = {
    "hog_x2": lambda: UpscaledHog(2.0),
    "daimler_x1.5": lambda: UpscaledHog(1.5, daimler=True),
    "haar_fullbody": lambda: HaarBodies("haarcascade_fullbody.xml"),
    "haar_upperbody": lambda: HaarBodies("haarcascade_upperbody.xml"),
}
