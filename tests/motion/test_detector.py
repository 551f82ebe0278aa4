"""The motion gate on real footage: the parking-lot clip's ground truth says when cars move."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from edge.config import MotionConfig
from edge.motion.detector import MotionDetector


def motion_by_frame(video: Path, stop: int) -> list[int]:
    capture = cv2.VideoCapture(str(video))
    detector = MotionDetector(MotionConfig())
    counts = []
    for _ in range(stop):
        ok, image = capture.read()
        assert ok
        counts.append(len(detector.update(image)))
    return counts


@pytest.fixture(scope="module")
def parking(shared_data: Path) -> list[int]:
    return motion_by_frame(shared_data / "video" / "parking_lot_cars.mp4", 377)


def test_first_frame_is_looked_at_whole(parking: list[int]) -> None:
    assert parking[0] == 1


# Cars move in about frames 56-108, 183-238 and 316-355 (the data's README). The background
# model needs ~20 frames to absorb a car that has just parked, so the quiet stretches start later.
@pytest.mark.parametrize(("start", "stop"), [(30, 55), (132, 155), (268, 315)])
def test_static_stretches_are_quiet(parking: list[int], start: int, stop: int) -> None:
    """Nothing moves here: detection can be skipped on most frames."""
    quiet = sum(c == 0 for c in parking[start:stop])
    assert quiet >= 0.75 * (stop - start), parking[start:stop]


@pytest.mark.parametrize(("start", "stop"), [(60, 105), (186, 236), (318, 352)])
def test_moving_cars_are_seen(parking: list[int], start: int, stop: int) -> None:
    moving = sum(c > 0 for c in parking[start:stop])
    assert moving >= 0.95 * (stop - start), parking[start:stop]
