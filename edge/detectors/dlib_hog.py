"""dlib's HOG + linear SVM frontal face detector (weights built into dlib)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from edge.types import FaceDetections

log = logging.getLogger(__name__)


class DlibHogFaceDetector:
    """Detects on a copy downscaled to `detect_width`; returns boxes in the input's pixels.

    HOG's cost grows with pixel count while gate faces are 60-150 px in 1080p, so detecting on
    ~960 px wide frames with one upsampling pass keeps faces down to ~40 source px findable.
    """

    def __init__(self, detect_width: int = 960, upsample: int = 1) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self._detect_width = detect_width
        self._upsample = upsample

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FaceDetections:
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self._detect_width / width)
        small = (
            image_bgr
            if scale == 1.0
            else cv2.resize(image_bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        )
        # dlib's HOG runs on grayscale internally; handing it gray saves its own conversion.
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        rects, scores, _ = self._detector.run(gray, self._upsample, 0.0)
        if not rects:
            return FaceDetections()
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32) / scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
        return FaceDetections.from_boxes(boxes, scores)


class DlibCnnFaceDetector:
    """dlib's CNN (MMOD) face detector: more accurate than HOG on turned faces, and fast only where
    dlib was built with CUDA (a Jetson); on a CPU it costs seconds per frame."""

    def __init__(self, model: Path, detect_width: int = 640, upsample: int = 0) -> None:
        if not dlib.DLIB_USE_CUDA:
            log.warning("detector dlib_cnn: this dlib has no CUDA; the CNN detector will be slow on the CPU")
        self._detector = dlib.cnn_face_detection_model_v1(str(model))
        self._detect_width = detect_width
        self._upsample = upsample

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FaceDetections:
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self._detect_width / width)
        small = image_bgr if scale == 1.0 else cv2.resize(
            image_bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )  # fmt: skip
        found = self._detector(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), self._upsample)
        if not found:
            return FaceDetections()
        boxes = np.array([[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found], np.float32)
        boxes /= scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
        return FaceDetections.from_boxes(boxes, [d.confidence for d in found])
