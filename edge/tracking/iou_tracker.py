"""Follows faces from detection to detection by box overlap, so one person is one track."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.types import FaceDetections


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of boxes a (N,4) and b (M,4), xyxy."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)


@dataclass
class _Track:
    track_id: int
    xyxy: npt.NDArray[np.float32]
    velocity: npt.NDArray[np.float32]  # per-frame box motion, to predict across frames without detection
    last_frame: int
    missed: int = 0  # consecutive detection passes without this face


@dataclass(frozen=True)
class TrackerUpdate:
    detections: FaceDetections  # the input detections, with tracker ids set
    ended: tuple[int, ...]  # tracks that ended at this update


class IouTracker:
    """Greedy IoU association with constant-velocity prediction.

    Faces at a gate move a few pixels per frame and rarely cross, so a greedy match on the
    predicted box is as good as Hungarian assignment here and needs no extra dependency.
    `update` is called on the frames where detection ran; frames in between need no call.
    """

    def __init__(self, iou_threshold: float = 0.2, max_missed: int = 8) -> None:
        self._iou_threshold = iou_threshold
        self._max_missed = max_missed
        self._tracks: list[_Track] = []
        self._next_id = 1

    def predicted_boxes(self, frame_index: int) -> npt.NDArray[np.float32]:
        """Where the live tracks' faces should be at `frame_index`, (N, 4)."""
        if not self._tracks:
            return np.empty((0, 4), np.float32)
        return np.stack([t.xyxy + t.velocity * (frame_index - t.last_frame) for t in self._tracks]).astype(np.float32)

    def update(self, detections: FaceDetections, frame_index: int) -> TrackerUpdate:
        ids = np.full(len(detections), -1, np.int64)
        if self._tracks and len(detections):
            iou = box_iou(self.predicted_boxes(frame_index), detections.xyxy)
            for flat in np.argsort(-iou, axis=None):
                ti, di = np.unravel_index(flat, iou.shape)
                if iou[ti, di] < self._iou_threshold:
                    break
                track = self._tracks[ti]
                if ids[di] != -1 or track.last_frame == frame_index:
                    continue
                gap = max(1, frame_index - track.last_frame)
                new_box = detections.xyxy[di]
                track.velocity = 0.5 * track.velocity + 0.5 * (new_box - track.xyxy) / gap
                track.xyxy = new_box.copy()
                track.last_frame = frame_index
                track.missed = 0
                ids[di] = track.track_id
        for track in self._tracks:
            if track.last_frame != frame_index:
                track.missed += 1
        for di in np.flatnonzero(ids == -1):
            track = _Track(self._next_id, detections.xyxy[di].copy(), np.zeros(4, np.float32), frame_index)
            self._tracks.append(track)
            ids[di] = track.track_id
            self._next_id += 1
        ended = tuple(t.track_id for t in self._tracks if t.missed > self._max_missed)
        if ended:
            self._tracks = [t for t in self._tracks if t.track_id not in ended]
        return TrackerUpdate(detections.with_tracker_ids(ids), ended)
