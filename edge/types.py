"""Data that flows between pipeline stages.

`Frame` enters the pipeline; `Detections` (parallel numpy arrays, supervision's `Detections`
trimmed to what the box uses) carries faces, objects and plates through detection and tracking;
`FaceObservation` carries recognition results to the decision stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Index = int | np.integer[Any] | slice | list[int] | npt.NDArray[np.bool_] | npt.NDArray[np.integer[Any]]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of a camera or file."""

    camera: str
    index: int  # frame index in the source (0-based)
    ts: float  # capture time, seconds since the epoch (UTC)
    image: npt.NDArray[np.uint8]  # BGR, as OpenCV decodes it


def _no_boxes() -> npt.NDArray[np.float32]:
    return np.empty((0, 4), np.float32)


def _no_scores() -> npt.NDArray[np.float32]:
    return np.empty(0, np.float32)


def _no_ids() -> npt.NDArray[np.int64]:
    return np.empty(0, np.int64)


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes found in one image, with one row per box in every array (supervision's `Detections`).

    Faces, people and vehicles, and plates all travel as this type from their detector through
    tracking. `class_id` is -1 from a single-class detector (faces, plates); `tracker_id` is -1 until
    a tracker sets it. `data` holds the further per-box arrays a stage adds (an object's class name,
    a plate's crop and read), indexed and filtered along with the boxes.
    """

    xyxy: npt.NDArray[np.float32] = field(default_factory=_no_boxes)  # (N, 4), in the image's pixels
    confidence: npt.NDArray[np.float32] = field(default_factory=_no_scores)  # (N,)
    class_id: npt.NDArray[np.int64] = field(default_factory=_no_ids)  # (N,)
    tracker_id: npt.NDArray[np.int64] = field(default_factory=_no_ids)  # (N,)
    data: Mapping[str, npt.NDArray[Any]] = field(default_factory=dict)  # name -> (N, ...)

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"Detections.xyxy must be (N, 4); got {self.xyxy.shape}")
        columns: dict[str, npt.NDArray[Any]] = {
            "confidence": self.confidence, "class_id": self.class_id, "tracker_id": self.tracker_id
        }  # fmt: skip
        for name, column in columns.items():
            if column.shape != (n,):
                raise ValueError(f"Detections.{name} must be ({n},) like xyxy; got {column.shape}")
        for name, array in self.data.items():
            if array.ndim == 0 or len(array) != n:
                raise ValueError(f"Detections.data[{name!r}] must have {n} rows like xyxy; got {array.shape}")

    @classmethod
    def from_boxes(
        cls,
        xyxy: npt.ArrayLike,
        confidence: npt.ArrayLike,
        class_id: npt.ArrayLike | None = None,
        data: Mapping[str, npt.ArrayLike] | None = None,
    ) -> Detections:
        """Untracked detections from array-likes (lists, arrays); `class_id` defaults to -1."""
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
        classes = np.full(len(boxes), -1, np.int64) if class_id is None else np.asarray(class_id, np.int64)
        return cls(
            boxes, np.asarray(confidence, np.float32).reshape(-1), classes.reshape(-1),
            np.full(len(boxes), -1, np.int64), {name: np.asarray(a) for name, a in (data or {}).items()},
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Index) -> Detections:
        """The detections picked by a mask, indices or a slice (an int picks one, still as Detections)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.tracker_id[index],
                          {name: array[index] for name, array in self.data.items()})  # fmt: skip

    @property
    def width(self) -> npt.NDArray[np.float32]:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    def with_tracker_ids(self, tracker_id: npt.ArrayLike) -> Detections:
        return Detections(self.xyxy, self.confidence, self.class_id, np.asarray(tracker_id, np.int64), self.data)

    def with_data(self, arrays: Mapping[str, npt.ArrayLike]) -> Detections:
        """The same detections with more per-box arrays in `data` (a name given again is replaced)."""
        data = {**self.data, **{name: np.asarray(a) for name, a in arrays.items()}}
        return Detections(self.xyxy, self.confidence, self.class_id, self.tracker_id, data)

    def moved_by(self, x: float, y: float) -> Detections:
        """The boxes shifted by (x, y): found in a crop at (x, y), now in the whole image's pixels."""
        offset = np.array([x, y, x, y], np.float32)
        return Detections(self.xyxy + offset, self.confidence, self.class_id, self.tracker_id, self.data)


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
class SubjectDetails:
    """Who a listed subject is, from its list entry: every alert on them carries it. A face enrolled on
    the box has at most a name (no category, no priority)."""

    name: str | None = None
    category: str | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """What recognition learned from one face sample."""

    sample: FaceSample
    match: Match | None  # None: nobody enrolled is near


FaceAlertKind = Literal["face_match", "elder_leaving"]


@dataclass(frozen=True, slots=True)
class GateCrossing:
    """A track crossing the gate line, and its face as it crossed: an `elder_leaving` alert shows this
    moment (frame, time, box, snapshot at the line), not the earlier one the person was recognised in."""

    direction: Literal["out", "in"]
    view: FaceSample  # the face in the crossing frame (quality 0: it was never scored for recognition)


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """The decision stage's verdict: this track is this subject; raise one alert."""

    sample: FaceSample  # what the alert shows (frame, time, box, snapshot): the deciding sample, or the crossing
    match: Match  # the track's best match to the subject
    matching_frames: int
    kind: FaceAlertKind = "face_match"
