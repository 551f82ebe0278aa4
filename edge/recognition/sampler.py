"""Sampling stage: picks which tracked faces are worth an embedding (~60 ms each) and crops them.

A track is embedded on its best frames only: at first sight, then whenever its face quality
(size x sharpness x frontal pose) clearly beats the best it was embedded at, and steadily while
its evidence is promising. It is never embedded again once the decision stage has settled it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from edge.config import RecognitionConfig
from edge.tracking.iou_tracker import TrackerUpdate
from edge.types import FaceSample, Frame

CROP_MARGIN = 0.5  # of the face size on each side: room for alignment and a useful snapshot


@dataclass
class _TrackState:
    embeddings: int = 0
    last_embed_frame: int = -(10**9)
    best_quality: float = 0.0


def crop_face(
    image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.uint8], tuple[float, float, float, float]]:
    """A padded crop around a face and the face box in crop coordinates."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    pad = CROP_MARGIN * max(x2 - x1, y2 - y1)
    cx1, cy1 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
    cx2, cy2 = int(min(width, x2 + pad)), int(min(height, y2 + pad))
    crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2])
    return crop, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)


class FaceQuality:
    """Size x sharpness x frontal pose, from the face crop and dlib's 5 landmarks (~1 ms)."""

    def __init__(self, landmarks: dlib.shape_predictor) -> None:
        self._landmarks = landmarks

    def __call__(self, crop: npt.NDArray[np.uint8], box: tuple[float, float, float, float]) -> float:
        x1, y1, x2, y2 = box
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        face = cv2.resize(gray[int(y1) : int(y2), int(x1) : int(x2)], (64, 64), interpolation=cv2.INTER_AREA)
        # Laplacian variance on a fixed-size face: blur from motion or focus lowers it.
        sharpness = min(1.0, cv2.Laplacian(face, cv2.CV_32F).var() / 400.0)
        points = self._landmarks(gray, dlib.rectangle(int(x1), int(y1), int(x2), int(y2))).parts()
        eye_right = np.mean([(points[0].x, points[0].y), (points[1].x, points[1].y)], axis=0)
        eye_left = np.mean([(points[2].x, points[2].y), (points[3].x, points[3].y)], axis=0)
        eye_distance = max(1.0, float(np.linalg.norm(eye_left - eye_right)))
        # The nose sits between the eyes when the face looks at the camera; its offset is yaw.
        yaw = abs(points[4].x - (eye_left[0] + eye_right[0]) / 2) / eye_distance
        frontal = max(0.0, 1.0 - 2.0 * yaw)
        return (x2 - x1) * (0.25 + 0.75 * sharpness) * (0.25 + 0.75 * frontal)


class FaceSampler:
    def __init__(self, quality: FaceQuality, config: RecognitionConfig) -> None:
        self._quality = quality
        self._config = config
        self._tracks: dict[int, _TrackState] = {}

    def select(
        self,
        frame: Frame,
        tracked: TrackerUpdate,
        decided: Collection[int],
        promising: Collection[int],
    ) -> list[FaceSample]:
        """The faces to embed this pass: at most `max_embeddings_per_pass`, most useful first."""
        cfg = self._config
        candidates: list[tuple[tuple[bool, int, float], FaceSample]] = []
        faces = tracked.detections
        for box, track_id in zip(faces.xyxy, faces.tracker_id.tolist(), strict=True):
            if track_id in decided or box[2] - box[0] < cfg.min_face_px:
                continue
            state = self._tracks.setdefault(track_id, _TrackState())
            if (
                state.embeddings >= cfg.max_embeddings_per_track
                or frame.index - state.last_embed_frame < cfg.embed_every_n_frames
            ):
                continue
            crop, crop_box = crop_face(frame.image, box)
            quality = self._quality(crop, crop_box)
            wanted = (
                state.embeddings < cfg.min_matching_frames  # a first look, enough to decide on
                or track_id in promising  # some frames matched: keep looking until decided
                or quality >= state.best_quality * (1.0 + cfg.min_quality_gain)  # a clearly better view
            )
            if wanted:
                sample = FaceSample(
                    frame.camera, frame.index, frame.ts, track_id, tuple(map(float, box)), crop, crop_box, quality
                )  # fmt: skip
                # Promising tracks first (an alert may be one look away), then the least-seen, then the best view.
                candidates.append(((track_id not in promising, state.embeddings, -quality), sample))
        # The embedding worker does ~16 faces a second: a budget per pass keeps it, and so alert
        # latency, from falling behind when a crowd walks in.
        chosen = [sample for _, sample in sorted(candidates, key=lambda c: c[0])[: cfg.max_embeddings_per_pass]]
        for sample in chosen:
            state = self._tracks[sample.track_id]
            state.embeddings += 1
            state.last_embed_frame = frame.index
            state.best_quality = max(state.best_quality, sample.quality)
        return chosen

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self._tracks.pop(track_id, None)
