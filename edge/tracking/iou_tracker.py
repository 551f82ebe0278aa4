"""Follows faces from detection to detection, so one person is one track.

A detection continues a track only when it overlaps the track's predicted box *and* looks like
the same face: about the same size, and about the same colours and shading. Box overlap alone
would hand a track, and the looks it already had, to whoever steps into the same spot (or, across
a cut in the footage, to a face in another scene); scene cuts end every track outright
(`edge.motion.scene_cut`, wired in `edge.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import Detections

# Appearance gates, measured on the crowd clip (every RetinaFace detection >= 30 px, every 3rd
# frame: 130 continuations of a track vs 283 pairs of two different faces in one frame):
# the colour histograms of a face and of its continuation were at most 0.41 apart (Bhattacharyya;
# median 0.13), two different faces 0.23-0.86 (median 0.47); the 12x12 grey thumbnails of a
# continuation correlated at least 0.55 (median 0.87). With the size gate these limits refuse
# ~78% of different-face pairs and no continuation; they are a guard, not an identification.
MAX_COLOUR_DISTANCE = 0.55
MIN_SHADING_CORRELATION = 0.3
THUMBNAIL = 12


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of boxes a (N,4) and b (M,4), xyxy."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)


@dataclass(frozen=True)
class Appearance:
    """A face's looks, cheap to compute (~0.1 ms): hue-saturation histogram and a grey thumbnail."""

    colours: npt.NDArray[np.float32]  # 16x8 H-S histogram, L1-normalised
    shading: npt.NDArray[np.float32]  # 12x12 grey thumbnail, zero-mean, unit norm

    @classmethod
    def of(cls, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> Appearance | None:
        height, width = image.shape[:2]
        x1, y1 = max(0, int(xyxy[0])), max(0, int(xyxy[1]))
        x2, y2 = min(width, int(xyxy[2])), min(height, int(xyxy[3]))
        if x2 - x1 < 2 or y2 - y1 < 2:
            return None
        face = image[y1:y2, x1:x2]
        colours = cv2.calcHist([cv2.cvtColor(face, cv2.COLOR_BGR2HSV)], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(colours, colours, 1, 0, cv2.NORM_L1)
        gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
        shading = cv2.resize(gray, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        shading -= shading.mean()
        return cls(colours, shading / max(float(np.linalg.norm(shading)), 1e-6))

    def same_face(self, other: Appearance) -> bool:
        colour_distance = cv2.compareHist(self.colours, other.colours, cv2.HISTCMP_BHATTACHARYYA)
        return colour_distance <= MAX_COLOUR_DISTANCE and float(self.shading @ other.shading) >= MIN_SHADING_CORRELATION


@dataclass
class _Track:
    track_id: int
    xyxy: npt.NDArray[np.float32]
    velocity: npt.NDArray[np.float32]  # per-frame box motion, to predict across frames without detection
    last_frame: int
    appearance: Appearance | None = None  # at the last detection
    missed: int = 0  # consecutive detection passes without this face


@dataclass(frozen=True)
class TrackerUpdate:
    detections: Detections  # the input detections, with tracker ids set
    ended: tuple[int, ...]  # tracks that ended at this update


def _width(xyxy: npt.NDArray[np.float32]) -> float:
    return max(1.0, float(xyxy[2] - xyxy[0]))


class IouTracker:
    """Greedy IoU association with constant-velocity prediction, gated by size and appearance.

    Faces at a gate move a few pixels per frame and rarely cross, so a greedy match on the
    predicted box is as good as Hungarian assignment here and needs no extra dependency.
    `update` is called on the frames where detection ran; frames in between need no call.
    """

    def __init__(self, iou_threshold: float = 0.2, max_missed: int = 8, max_size_ratio: float = 1.4) -> None:
        self._iou_threshold = iou_threshold
        self._max_missed = max_missed
        self._max_size_ratio = max_size_ratio
        self._tracks: list[_Track] = []
        self._next_id = 1

    def predicted_boxes(self, frame_index: int) -> npt.NDArray[np.float32]:
        """Where the live tracks' faces should be at `frame_index`, (N, 4)."""
        if not self._tracks:
            return np.empty((0, 4), np.float32)
        return np.stack([t.xyxy + t.velocity * (frame_index - t.last_frame) for t in self._tracks]).astype(np.float32)

    def update(
        self, detections: Detections, frame_index: int, image: npt.NDArray[np.uint8] | None = None
    ) -> TrackerUpdate:
        """Associate `detections` (found in `image`, when given: then appearance is checked too)."""
        looks = [Appearance.of(image, box) if image is not None else None for box in detections.xyxy]
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
                new_box = detections.xyxy[di]
                if not self._same_face(track, new_box, looks[di]):
                    continue  # overlap alone does not make it the same person
                # A float: NumPy's stubs type float32 / int as float64 (at run time both stay float32).
                gap = float(max(1, frame_index - track.last_frame))
                track.velocity = 0.5 * track.velocity + 0.5 * (new_box - track.xyxy) / gap
                track.xyxy = new_box.copy()
                track.last_frame = frame_index
                track.appearance = looks[di] or track.appearance
                track.missed = 0
                ids[di] = track.track_id
        for track in self._tracks:
            if track.last_frame != frame_index:
                track.missed += 1
        for di in np.flatnonzero(ids == -1):
            track = _Track(self._next_id, detections.xyxy[di].copy(), np.zeros(4, np.float32), frame_index, looks[di])
            self._tracks.append(track)
            ids[di] = track.track_id
            self._next_id += 1
        ended = tuple(t.track_id for t in self._tracks if t.missed > self._max_missed)
        if ended:
            self._tracks = [t for t in self._tracks if t.track_id not in ended]
        return TrackerUpdate(detections.with_tracker_ids(ids), ended)

    def end_all(self) -> tuple[int, ...]:
        """End every track now (a scene cut): the next detections start new tracks."""
        ended = tuple(t.track_id for t in self._tracks)
        self._tracks = []
        return ended

    def _same_face(self, track: _Track, box: npt.NDArray[np.float32], looks: Appearance | None) -> bool:
        # A face walking toward the camera grows ~1% a frame; between two detection passes its
        # width changed by at most 18% on the crowd clip. A much larger jump is another face.
        ratio = _width(box) / _width(track.xyxy)
        if max(ratio, 1.0 / ratio) > self._max_size_ratio:
            return False
        return looks is None or track.appearance is None or track.appearance.same_face(looks)
