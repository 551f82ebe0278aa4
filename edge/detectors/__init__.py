"""Face detector backends, one module each, behind the `FaceDetector` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import DetectorConfig
from edge.types import Detections


class FaceDetector(Protocol):
    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """Faces in a BGR image, boxes in that image's pixels."""
        ...


def downscale(image: npt.NDArray[np.uint8], max_width: int) -> tuple[npt.NDArray[np.uint8], float]:
    """A copy at most `max_width` wide (the image itself when already narrower) and its scale."""
    height, width = image.shape[:2]
    scale = min(1.0, max_width / width)
    if scale == 1.0:
        return image, 1.0
    size = (round(width * scale), round(height * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def to_frame(boxes: npt.ArrayLike, scale: float, frame_shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """xyxy boxes found on a `downscale`d copy, back in frame pixels and inside the frame."""
    height, width = frame_shape[:2]
    out = np.asarray(boxes, np.float32).reshape(-1, 4) / scale
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width - 1)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height - 1)
    return out


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
