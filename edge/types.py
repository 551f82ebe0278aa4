"""Data that flows between pipeline stages.

`Frame` enters the pipeline; `FaceDetections` (parallel numpy arrays, in the spirit of
supervision's `Detections`) flows through detection and tracking; `FaceObservation` carries
recognition results to the decision stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of a camera or file."""

    camera: str
    index: int  # frame index in the source (0-based)
    ts: float  # capture time, seconds since the epoch (UTC)
    image: npt.NDArray[np.uint8]  # BGR, as OpenCV decodes it


@dataclass(frozen=True)
class FaceDetections:
    """Face boxes in source-frame pixels, with optional tracker ids (-1 = untracked)."""

    xyxy: npt.NDArray[np.float32] = field(default_factory=lambda: np.empty((0, 4), np.float32))
    confidence: npt.NDArray[np.float32] = field(default_factory=lambda: np.empty(0, np.float32))
    tracker_id: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4) or len(self.confidence) != n or len(self.tracker_id) != n:
            raise ValueError("FaceDetections arrays must be parallel: xyxy (N,4), confidence (N,), tracker_id (N,)")

    @classmethod
    def from_boxes(cls, xyxy: npt.ArrayLike, confidence: npt.ArrayLike) -> FaceDetections:
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
        return cls(boxes, np.asarray(confidence, np.float32).reshape(-1), np.full(len(boxes), -1, np.int64))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice) -> FaceDetections:
        return FaceDetections(self.xyxy[index], self.confidence[index], self.tracker_id[index])

    @property
    def width(self) -> npt.NDArray[np.float32]:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    def with_tracker_ids(self, tracker_id: npt.NDArray[np.int64]) -> FaceDetections:
        return FaceDetections(self.xyxy, self.confidence, np.asarray(tracker_id, np.int64))


@dataclass(frozen=True, slots=True)
class FaceSample:
    """A tracked face chosen for embedding: a padded crop of it and where it came from.

    The crop travels to the embedding worker and later becomes the alert's snapshot, so the
    full frame is never kept for recognition.
    """

    camera: str
    frame_index: int
    ts: float
    track_id: int
    xyxy: tuple[float, float, float, float]  # face box in frame pixels
    crop: npt.NDArray[np.uint8]  # BGR, the face with a margin around it
    crop_xyxy: tuple[float, float, float, float]  # face box in crop pixels
    quality: float  # higher is better for recognition: size, sharpness, frontal pose


@dataclass(frozen=True, slots=True)
class Match:
    """The nearest enrolled subject for one face embedding."""

    list_name: str
    subject_id: str
    distance: float
    list_version: str = "local"  # "local" (enrolled on the box) or "v<N>" (the centre's version)
    runner_up_distance: float = float("inf")  # the nearest *other* subject (any list): how unambiguous this is


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """What recognition learned from one face sample."""

    sample: FaceSample
    match: Match | None  # None: nobody enrolled is near


FaceAlertKind = Literal["face_match", "elder_leaving"]


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """The decision stage's verdict: this track is this subject; raise one alert."""

    sample: FaceSample  # the deciding sample (its crop becomes the snapshot)
    match: Match  # the track's best match to the subject
    matching_frames: int
    kind: FaceAlertKind = "face_match"
