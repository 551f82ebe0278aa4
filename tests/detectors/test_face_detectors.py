"""Every face detector backend finds the one face of real photos, in dlib-style boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import pytest

from edge.config import DetectorConfig, GateboxConfig
from edge.detectors import build_face_detector
from edge.models import verify_models


@pytest.mark.parametrize("kind", ["retinaface", "dlib_hog", "dlib_cnn"])
@pytest.mark.parametrize("photo", ["kit_harington/kit2.jpg", "person_A/img5.jpg"])
def test_detector_finds_the_face(
    faces_dir: Path, kind: Literal["retinaface", "dlib_hog", "dlib_cnn"], photo: str
) -> None:
    detector = build_face_detector(
        DetectorConfig(kind=kind, detect_width=480), verify_models(GateboxConfig().models_path)
    )
    image = cv2.imread(str(faces_dir / photo))
    faces = detector.detect(image)
    assert len(faces) == 1, kind
    x1, y1, x2, y2 = faces.xyxy[0]
    assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]
    assert 0.7 < (x2 - x1) / (y2 - y1) < 1.4  # square-ish, as dlib's landmark model expects
