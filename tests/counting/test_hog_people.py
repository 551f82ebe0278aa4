"""OpenCV's HOG people detector as a `Detections` backend: people from behind, class `person`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.detectors.hog_people import HogPeopleDetector
from edge.detectors.onnx_objects import CLASS_NAME


def test_finds_a_person_walking_away_in_frame_pixels(shared_data: Path) -> None:
    capture = cv2.VideoCapture(str(shared_data / "video" / "one_by_one_from_behind.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 348)  # one man from behind, standing at the table
    ok, image = capture.read()
    assert ok
    found = HogPeopleDetector(detect_width=640).detect(image)
    assert len(found) >= 1 and set(found.data[CLASS_NAME]) == {"person"}
    x1, _, x2, y2 = found.xyxy[int(np.argmax(found.confidence))]
    assert 300 < (x1 + x2) / 2 < 520 and y2 > 200  # the man, in the 768 x 432 frame's pixels


def test_nobody_in_an_empty_or_tiny_image() -> None:
    detector = HogPeopleDetector()
    assert len(detector.detect(np.full((432, 768, 3), 128, np.uint8))) == 0
    assert len(detector.detect(np.zeros((50, 30, 3), np.uint8))) == 0  # smaller than HOG's window
