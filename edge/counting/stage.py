"""People stage of the pipeline (with `passages.people.enabled` and a gate line): finds people by
their bodies where it moved (every n-th frame), tracks them, and hands body and face tracks to the
`PeopleCounter`, which decides one passage per person."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.alerts import face_snapshot
from edge.config import GateLineConfig, PeoplePassagesConfig
from edge.counting.people import PeopleCounter, PersonPassage
from edge.detectors.motion_people import MotionPeopleDetector
from edge.detectors.onnx_objects import CLASS_NAME
from edge.detectors.regions import detection_window
from edge.recognition.sampler import crop_face
from edge.tracking.iou_tracker import IouTracker, TrackerUpdate
from edge.types import Detections, Frame

PERSON = "person"
MOTION_MAX_MISSED = 3
MOTION_SIZE_RATIO = 3.0


class PersonDetector(Protocol):
    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """Objects in a BGR image (boxes in its pixels) with a `CLASS_NAME` each; people are `person`."""
        ...


class PeopleStage:
    def __init__(
        self,
        config: PeoplePassagesConfig,
        line: GateLineConfig,
        detector: PersonDetector | MotionPeopleDetector | None,
        padding: float,
    ) -> None:
        self._config = config
        self._detector = detector
        self._padding = padding
        if isinstance(detector, MotionPeopleDetector):
            # Blobs are found on every frame, so a track may miss MOTION_MAX_MISSED of them; their width
            # jumps as legs swing and blobs part, so size is no guide; their looks are (people passing
            # behind one another merge into one blob: without looks the track goes on with the wrong one).
            self._tracker = IouTracker(
                iou_threshold=0.2, max_missed=MOTION_MAX_MISSED, max_size_ratio=MOTION_SIZE_RATIO
            )
        else:
            self._tracker = IouTracker(iou_threshold=0.2, max_missed=3, max_size_ratio=1.6)
        self.counter = PeopleCounter(line, config)

    def bodies(self, frame: Frame, moving: npt.NDArray[np.float32]) -> None:
        """Look for people where it moved (and where people are tracked), on every n-th frame; or, with
        the motion detector, on every frame (its background learns from each)."""
        if isinstance(self._detector, MotionPeopleDetector):
            found = self._detector.update(frame.image)
            self.counter.update("body", frame, self._tracker.update(found, frame.index, frame.image))
            return
        if self._detector is None or frame.index % self._config.every_n_frames:
            return
        regions = np.concatenate([moving, self._tracker.predicted_boxes(frame.index)])
        window = detection_window(regions, frame.image.shape, self._padding)
        if window is None:
            found = Detections()
        else:
            x1, y1, x2, y2 = window
            found = self._detector.detect(frame.image[y1:y2, x1:x2]).moved_by(x1, y1)
            if CLASS_NAME in found.data:
                found = found[found.data[CLASS_NAME] == PERSON]
        self.counter.update("body", frame, self._tracker.update(found, frame.index))

    def faces(self, frame: Frame, tracked: TrackerUpdate) -> None:
        """The face tracks of this frame (where faces were detected)."""
        views = None
        if self._config.snapshots:
            faces = tracked.detections
            views = {int(t): face_snapshot(crop_face(frame.image, box)[0])
                     for box, t in zip(faces.xyxy, faces.tracker_id, strict=True)}  # fmt: skip
        self.counter.update("face", frame, tracked, views)

    def end_all(self, frame: Frame) -> None:
        """A scene cut: every body and face track ends."""
        self._tracker.end_all()
        self.counter.end_all(frame)

    def take_passages(self) -> list[PersonPassage]:
        return self.counter.take_passages()

    def flush(self) -> None:
        self.counter.flush()
