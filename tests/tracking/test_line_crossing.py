from __future__ import annotations

import numpy as np
import pytest

from edge.config import GateLineConfig
from edge.tracking.iou_tracker import TrackerUpdate
from edge.tracking.line_crossing import LineCrossing
from edge.types import Detections

LINE = GateLineConfig(start=(0.0, 0.5), end=(1.0, 0.5), outside=(0.5, 1.0), margin=0.05)


def at(y_bottom: float, track: int = 1) -> TrackerUpdate:
    """A face whose box bottom is at `y_bottom` (fraction of a 100x100 frame)."""
    faces = Detections.from_boxes([[40, y_bottom * 100 - 10, 60, y_bottom * 100]], [1.0])
    return TrackerUpdate(faces.with_tracker_ids(np.array([track])), ())


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ([0.3, 0.4, 0.6, 0.7], ["out"]),  # walks out across the line
        ([0.7, 0.6, 0.4, 0.3], ["in"]),
        ([0.3, 0.52, 0.48, 0.53, 0.3], []),  # jitter inside the margin never counts
        ([0.3, 0.7, 0.3, 0.7], ["out", "in", "out"]),
        ([0.7, 0.8], []),  # first seen outside and stays there
    ],
)
def test_crossings(path: list[float], expected: list[str]) -> None:
    gate = LineCrossing(LINE)
    events = [d for y in path for d in gate.update(at(y), (100, 100, 3)).values()]
    assert events == expected


def test_outside_point_on_the_line_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        LineCrossing(GateLineConfig(start=(0, 0.5), end=(1, 0.5), outside=(0.3, 0.5)))
