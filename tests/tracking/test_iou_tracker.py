from __future__ import annotations

import numpy as np
import pytest

from edge.tracking.iou_tracker import IouTracker, box_iou
from edge.types import Detections


def faces(*boxes: tuple[float, float, float, float]) -> Detections:
    return Detections.from_boxes(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes)))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
    ],
)
def test_box_iou(a: tuple, b: tuple, expected: float) -> None:
    assert box_iou(np.array([a], np.float32), np.array([b], np.float32))[0, 0] == pytest.approx(expected)


def test_two_faces_walking_keep_their_ids() -> None:
    tracker = IouTracker(iou_threshold=0.2, max_missed=3)
    ids = []
    for i in range(20):
        update = tracker.update(faces((100 + 4 * i, 100, 160 + 4 * i, 160), (400 - 3 * i, 120, 460 - 3 * i, 180)), i)
        ids.append(tuple(update.detections.tracker_id))
        assert update.ended == ()
    assert len(set(ids)) == 1 and len(set(ids[0])) == 2


def test_a_missed_detection_bridges_by_prediction_then_the_track_ends() -> None:
    tracker = IouTracker(iou_threshold=0.3, max_missed=3)
    for i in range(5):  # moving 10 px per frame
        first = tracker.update(faces((10 * i, 0, 10 * i + 40, 40)), i).detections.tracker_id[0]
    tracker.update(faces(), 5)
    tracker.update(faces(), 6)
    # after a 2-frame gap the face is 30 px further on: the predicted box still overlaps it
    assert tracker.update(faces((70, 0, 110, 40)), 7).detections.tracker_id[0] == first
    ended = [tracker.update(faces(), i).ended for i in range(8, 12)]
    assert ended == [(), (), (), (first,)]


def test_new_face_after_the_end_gets_a_new_id() -> None:
    tracker = IouTracker(max_missed=0)
    a = tracker.update(faces((0, 0, 40, 40)), 0).detections.tracker_id[0]
    assert tracker.update(faces(), 1).ended == (a,)
    assert tracker.update(faces((0, 0, 40, 40)), 2).detections.tracker_id[0] != a
