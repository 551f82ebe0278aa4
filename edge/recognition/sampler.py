"""Sampling stage: picks which tracked faces to embed (~60 ms each) and crops them.

Coverage first: every undecided track in view is embedded steadily for as long as it is visible,
at least `min_looks_per_second` (a person seen side-on at first is looked at again when they turn;
an unlucky first look proves nothing). Embeddings are paid from a per-camera budget of
`embeddings_per_second` (a token bucket on the camera's clock), shared round-robin: the track
looked at least recently goes first, so when many people are in view every one of them is looked
at less often, and none is dropped. A clearly better view (face quality up by `min_quality_gain`)
jumps the queue; spare budget goes to tracks whose evidence is promising. A track is never
embedded again once the decision stage has settled it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from edge.config import RecognitionConfig
from edge.recognition.embedder import Box
from edge.tracking.iou_tracker import TrackerUpdate
from edge.types import FaceSample, Frame

BURST_S = 1.0  # the budget saves up at most this many seconds of embeddings: a crowd walking in gets first looks
CROP_MARGIN = 0.5  # of the face size on each side: room for alignment and a useful snapshot

# How good a look a crop gives (larger is better), from the crop and the face box in it: `FaceQuality`.
QualityScore = Callable[[npt.NDArray[np.uint8], Box], float]


@dataclass
class _TrackState:
    looks: int = 0
    last_look_ts: float = float("-inf")
    next_due_ts: float = float("-inf")  # the floor's schedule: looked at again by then
    best_quality: float = 0.0


def as_box(xyxy: npt.NDArray[np.float32]) -> Box:
    """One row of a detections' `xyxy` as four floats."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return x1, y1, x2, y2


def crop_face(image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.uint8], Box]:
    """A padded crop around a face and the face box in crop coordinates."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = as_box(xyxy)
    pad = CROP_MARGIN * max(x2 - x1, y2 - y1)
    cx1, cy1 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
    cx2, cy2 = int(min(width, x2 + pad)), int(min(height, y2 + pad))
    crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2])
    return crop, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)


def face_views(frame: Frame, tracked: TrackerUpdate, track_ids: Collection[int]) -> dict[int, FaceSample]:
    """The faces of `track_ids` in this frame as unscored samples (quality 0): what an alert shows of a
    moment other than a look, such as a track crossing the gate line."""
    views = {}
    faces = tracked.detections
    for box, track_id in zip(faces.xyxy, faces.tracker_id.tolist(), strict=True):
        if track_id in track_ids:
            crop, crop_box = crop_face(frame.image, box)
            views[track_id] = FaceSample(
                frame.camera, frame.index, frame.ts, track_id, as_box(box), crop, crop_box, 0.0
            )  # fmt: skip
    return views


def face_yaw(points: dlib.points) -> float:
    """How far a face is turned, from dlib's 5 landmarks (eye corners, nose): the nose's offset from
    the middle of the eyes, in eye distances. 0 looks at the camera; ~0.6 tan(angle) when turned."""
    eye_right = np.mean([(points[0].x, points[0].y), (points[1].x, points[1].y)], axis=0)
    eye_left = np.mean([(points[2].x, points[2].y), (points[3].x, points[3].y)], axis=0)
    eye_distance = max(1.0, float(np.linalg.norm(eye_left - eye_right)))
    return abs(points[4].x - (eye_left[0] + eye_right[0]) / 2) / eye_distance


class FaceQuality:
    """Size x sharpness x frontal pose, from the face crop and dlib's 5 landmarks (~1 ms)."""

    def __init__(self, landmarks: dlib.shape_predictor) -> None:
        self._landmarks = landmarks

    def __call__(self, crop: npt.NDArray[np.uint8], box: Box) -> float:
        x1, y1, x2, y2 = box
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        face = cv2.resize(gray[int(y1) : int(y2), int(x1) : int(x2)], (64, 64), interpolation=cv2.INTER_AREA)
        # Laplacian variance on a fixed-size face: blur from motion or focus lowers it.
        sharpness = min(1.0, cv2.Laplacian(face, cv2.CV_32F).var() / 400.0)
        points = self._landmarks(gray, dlib.rectangle(int(x1), int(y1), int(x2), int(y2))).parts()
        frontal = max(0.0, 1.0 - 2.0 * face_yaw(points))
        return (x2 - x1) * (0.25 + 0.75 * sharpness) * (0.25 + 0.75 * frontal)


class FaceSampler:
    def __init__(self, quality: QualityScore, config: RecognitionConfig) -> None:
        self._quality = quality
        self._config = config
        self._tracks: dict[int, _TrackState] = {}
        self._tokens = config.embeddings_per_second * BURST_S
        self._last_pass_ts: float | None = None

    def select(
        self,
        frame: Frame,
        tracked: TrackerUpdate,
        decided: Collection[int],
        promising: Collection[int],
    ) -> list[FaceSample]:
        """The faces to embed this pass, most urgent first, within the budget."""
        cfg, now = self._config, frame.ts
        gap = 0.0 if self._last_pass_ts is None else max(0.0, now - self._last_pass_ts)
        self._last_pass_ts = now
        self._tokens = min(cfg.embeddings_per_second * BURST_S, self._tokens + gap * cfg.embeddings_per_second)
        period, min_interval = 1.0 / cfg.min_looks_per_second, 1.0 / cfg.max_looks_per_second
        candidates: list[tuple[tuple[int, float, float], FaceSample]] = []
        faces = tracked.detections
        for box, track_id in zip(faces.xyxy, faces.tracker_id.tolist(), strict=True):
            if track_id in decided or box[2] - box[0] < cfg.min_face_px:
                continue
            state = self._tracks.setdefault(track_id, _TrackState())
            # Due for the floor when this pass is nearer the scheduled time than the next pass would be.
            due = now + gap / 2 >= state.next_due_ts
            if not due and now - state.last_look_ts < min_interval:
                continue
            crop, crop_box = crop_face(frame.image, box)
            quality = self._quality(crop, crop_box)
            better_view = state.looks > 0 and quality >= state.best_quality * (1.0 + cfg.min_quality_gain)
            if state.looks == 0 or better_view:
                urgency = 0  # a first look, or a clearly better view than any so far: jumps the queue
            elif due:
                urgency = 1  # the floor: round-robin, least recently looked at first
            elif track_id in promising:
                urgency = 2  # spare budget: some samples matched, an alert may be a look or two away
            else:
                continue
            sample = FaceSample(
                frame.camera, frame.index, now, track_id, as_box(box), crop, crop_box, quality
            )  # fmt: skip
            candidates.append(((urgency, state.last_look_ts, -quality), sample))  # ties: the better view
        budget = min(cfg.max_embeddings_per_pass, int(self._tokens))
        chosen = [sample for _, sample in sorted(candidates, key=lambda c: c[0])[:budget]]
        self._tokens -= len(chosen)
        for sample in chosen:
            state = self._tracks[sample.track_id]
            state.looks += 1
            state.last_look_ts = now
            if now + gap / 2 >= state.next_due_ts > float("-inf"):
                # A look the floor was owed: keep the schedule (passes are discrete, so a look a little
                # late does not push every later one back), with at most half a period of catching up
                # after the budget ran short, so no burst of stale looks follows.
                state.next_due_ts = max(state.next_due_ts + period, now + period / 2)
            else:
                state.next_due_ts = now + period
            state.best_quality = max(state.best_quality, sample.quality)
        return chosen

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self._tracks.pop(track_id, None)
