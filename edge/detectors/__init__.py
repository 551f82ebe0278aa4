"""Face detector backends, one module each, behind the `FaceDetector` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.config import DetectorConfig
from edge.types import FaceDetections


class FaceDetector(Protocol):
    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FaceDetections:
        """Faces in a BGR image, boxes in that image's pixels."""
        ...


def build_face_detector(config: DetectorConfig, model_paths: Mapping[str, Path]) -> FaceDetector:
    """The configured backend; `model_paths` are the verified model files by manifest name."""
    if config.kind == "retinaface":
        from edge.detectors.retinaface_onnx import RetinaFaceDetector

        return RetinaFaceDetector(
            model_paths["face_detector_retinaface"], config.detect_width or 640, config.min_confidence,
            providers=list(config.providers),
        )  # fmt: skip
    if config.kind == "dlib_cnn":
        from edge.detectors.dlib_hog import DlibCnnFaceDetector

        return DlibCnnFaceDetector(model_paths["face_detector_dlib_cnn"], config.detect_width or 640)
    if config.kind == "dlib_hog":
        from edge.detectors.dlib_hog import DlibHogFaceDetector

        return DlibHogFaceDetector(detect_width=config.detect_width or 960, upsample=config.upsample)
    raise ValueError(f"unknown face detector kind {config.kind!r}")
