"""People by their shape: OpenCV's HOG + linear SVM people detector (Dalal-Triggs, ships with OpenCV).

It finds whole upright people from about 64 x 128 px (in the downscaled image), also from behind,
where a face detector sees nothing. It is slow on a whole frame, so `PersonDetection` runs it only
in the window around what moved, and the pipeline only on every n-th frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge.detectors import downscale, to_frame
from edge.detectors.onnx_objects import CLASS_NAME
from edge.types import Detections

PERSON = "person"
# HOG's window is 64 x 128: a crop smaller than this holds nobody it can find.
MIN_CROP = (64, 128)


class HogPeopleDetector:
    def __init__(self, detect_width: int = 640, min_confidence: float = 0.5, nms_iou: float = 0.4) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._detect_width = detect_width
        self._min_confidence = min_confidence
        self._nms_iou = nms_iou

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """People in a BGR image, boxes in its pixels, `CLASS_NAME` `person`."""
        small, scale = downscale(image_bgr, self._detect_width)
        if small.shape[1] < MIN_CROP[0] or small.shape[0] < MIN_CROP[1]:
            return people(np.empty((0, 4), np.float32), np.empty(0, np.float32))
        rects, weights = self._hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
        scores = np.asarray(weights, np.float32).reshape(-1)
        keep = scores >= self._min_confidence
        rects, scores = np.asarray(rects, np.float32).reshape(-1, 4)[keep], scores[keep]
        if not len(rects):
            return people(np.empty((0, 4), np.float32), scores)
        chosen = np.asarray(cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), self._min_confidence, self._nms_iou))
        chosen = chosen.astype(int).reshape(-1)
        xywh = rects[chosen]
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return people(to_frame(xyxy, scale, image_bgr.shape), scores[chosen])


def people(xyxy: npt.NDArray[np.float32], scores: npt.NDArray[np.float32]) -> Detections:
    return Detections.from_boxes(xyxy, scores, None, {CLASS_NAME: np.full(len(xyxy), PERSON, "<U16")})
