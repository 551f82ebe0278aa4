"""The people stage: a body detector run every n-th frame where it moved, its tracks counted."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.config import GateLineConfig, PeoplePassagesConfig
from edge.counting.stage import PeopleStage
from edge.detectors.hog_people import people
from edge.types import Detections, Frame

LINE = GateLineConfig(start=(0.0, 0.5), end=(1.0, 0.5), outside=(0.5, 1.0))


class WalkingOut:
    """One person walking down the frame, 8 px a frame; records which frames it was asked about."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.y = 60.0

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        self.calls.append(image_bgr.shape[:2])
        return people(np.array([[80, self.y - 50, 110, self.y]], np.float32), np.array([1.0], np.float32))


def test_bodies_crossing_the_line_are_counted_and_the_detector_runs_every_nth_frame_only() -> None:
    detector = WalkingOut()
    stage = PeopleStage(PeoplePassagesConfig(enabled=True, every_n_frames=2), LINE, detector, padding=0.0)
    whole = np.array([[0, 0, 200, 200]], np.float32)
    for i in range(12):
        detector.y = 60.0 + 8 * i
        stage.bodies(Frame("gate", i, 100.0 + i, np.zeros((200, 200, 3), np.uint8)), whole)
    assert len(detector.calls) == 6
    stage.flush()
    [passage] = stage.take_passages()
    assert passage.direction == "out" and passage.camera == "gate"


def test_nothing_moving_and_nobody_tracked_runs_no_detector() -> None:
    detector = WalkingOut()
    stage = PeopleStage(PeoplePassagesConfig(enabled=True, every_n_frames=1), LINE, detector, padding=0.0)
    stage.bodies(Frame("gate", 0, 1.0, np.zeros((200, 200, 3), np.uint8)), np.empty((0, 4), np.float32))
    assert detector.calls == []
