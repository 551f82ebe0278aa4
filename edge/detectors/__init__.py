"""Face detector backends, one module each, behind the `FaceDetector` protocol."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.config import DetectorConfig
from edge.types import FaceDetections


class FaceDetector(Protocol):
    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FaceDetections:
        """Faces in a BGR image, boxes in that image's pixels."""
        ...


def build_face_detector(config: DetectorConfig) -> FaceDetector:
    if config.kind == "dlib_hog":
        from edge.detectors.dlib_hog import DlibHogFaceDetector

        return DlibHogFaceDetector(detect_width=config.detect_width, upsample=config.upsample)
    raise ValueError(f"unknown face detector kind {config.kind!r}")
