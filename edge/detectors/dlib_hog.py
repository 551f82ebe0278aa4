"""dlib's HOG + linear SVM frontal face detector (weights built into dlib)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from edge.detectors import downscale, to_frame
from edge.types import Detections

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

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        small, scale = downscale(image_bgr, self._detect_width)
        # dlib's HOG runs on grayscale internally; handing it gray saves its own conversion.
        rects, scores, _ = self._detector.run(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), self._upsample, 0.0)
        if not rects:
            return Detections()
        boxes = [[r.left(), r.top(), r.right(), r.bottom()] for r in rects]
        return Detections.from_boxes(to_frame(boxes, scale, image_bgr.shape), scores)


class DlibCnnFaceDetector:
    """dlib's CNN (MMOD) face detector: more accurate than HOG on turned faces, and fast only where
    dlib was built with CUDA (a Jetson); on a CPU it costs seconds per frame."""

    def __init__(self, model: Path, detect_width: int = 640, upsample: int = 0) -> None:
        if not dlib.DLIB_USE_CUDA:
            log.warning("detector dlib_cnn: this dlib has no CUDA; the CNN detector will be slow on the CPU")
        self._detector = dlib.cnn_face_detection_model_v1(str(model))
        self._detect_width = detect_width
        self._upsample = upsample

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        small, scale = downscale(image_bgr, self._detect_width)
        found = self._detector(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), self._upsample)
        if not found:
            return Detections()
        boxes = [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found]
        return Detections.from_boxes(to_frame(boxes, scale, image_bgr.shape), [d.confidence for d in found])
