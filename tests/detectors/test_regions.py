from __future__ import annotations

import numpy as np
import pytest

from edge.detectors.regions import detection_window


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        ([], None),
        ([(100, 100, 200, 200)], (90, 90, 210, 210)),  # padded by 0.01 x width
        ([(100, 100, 200, 200), (600, 300, 700, 400)], (90, 90, 710, 410)),
        ([(0, 0, 50, 50)], (0, 0, 60, 60)),  # clipped at the frame's edge
        ([(0, 0, 990, 700)], (0, 0, 1000, 800)),  # most of the frame: the whole frame
    ],
)
def test_detection_window(regions: list, expected: tuple | None) -> None:
    boxes = np.array(regions, np.float32).reshape(-1, 4)
    assert detection_window(boxes, (800, 1000, 3), padding=0.01) == expected
