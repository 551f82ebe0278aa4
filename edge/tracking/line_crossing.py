"""Which way tracks cross the gate line (in the spirit of supervision's LineZone).

The anchor is the bottom centre of the face box. A track crosses when its anchor goes from more
than `margin` on one side of the line to more than `margin` on the other; jitter near the line
never counts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.config import GateLineConfig
from edge.tracking.iou_tracker import TrackerUpdate

Direction = Literal["out", "in"]


class LineCrossing:
    def __init__(self, line: GateLineConfig) -> None:
        self._start = np.array(line.start, np.float64)
        self._direction = np.array(line.end, np.float64) - self._start
        self._length = float(np.hypot(*self._direction))
        if self._length == 0:
            raise ValueError("gate line start and end must differ")
        outside = self._signed(np.array(line.outside, np.float64))
        if outside == 0:
            raise ValueError("gate line `outside` point lies on the line")
        self._outside_sign = np.sign(outside)
        self._margin = line.margin
        self._side: dict[int, float] = {}  # track id -> last side (+1 outside, -1 inside)

    def _signed(self, point: np.ndarray) -> float:
        """Signed distance of `point` from the line, as a fraction of the frame."""
        rel = point - self._start
        return float(self._direction[0] * rel[1] - self._direction[1] * rel[0]) / self._length

    def side(self, xyxy: npt.ArrayLike, frame_shape: tuple[int, ...]) -> float | None:
        """+1 outside, -1 inside, None within `margin` of the line: where this box's anchor is."""
        height, width = frame_shape[:2]
        x1, _, x2, y2 = (float(v) for v in np.asarray(xyxy).reshape(4))
        distance = self._signed(np.array([(x1 + x2) / 2 / width, y2 / height])) * self._outside_sign
        if abs(distance) <= self._margin:
            return None
        return 1.0 if distance > 0 else -1.0

    def update(self, tracked: TrackerUpdate, frame_shape: tuple[int, ...]) -> dict[int, Direction]:
        crossings: dict[int, Direction] = {}
        faces = tracked.detections
        for box, track_id in zip(faces.xyxy, faces.tracker_id.tolist(), strict=True):
            side = self.side(box, frame_shape)
            if side is None:
                continue
            previous = self._side.get(track_id)
            self._side[track_id] = side
            if previous is not None and previous != side:
                crossings[track_id] = "out" if side > 0 else "in"
        for track_id in tracked.ended:
            self._side.pop(track_id, None)
        return crossings
