"""People as what moves: the classic fixed-camera people counter (issue 18).

A background model (OpenCV's MOG2, per pixel a mixture of Gaussians, shadows marked apart) learns
the empty scene; what differs from it, after removing shadows and speckle, falls into blobs; the
blobs of one person's body are joined and each blob is a person box. It needs no view of a face
or of a whole upright body, so it finds people from behind, turning, filling the frame or far and
small, where HOG finds none (docs/benchmarks.md, "Counting"). It cannot tell a person from anything
else that moves, nor two people walking close together apart (they count as one): it is for a gate
camera that sees people on foot, with vehicles counted by plates.

Unlike a detector it must see every frame, whole, in order: the background is learned from them.
Every fraction below is of the frame, so the same values hold at any resolution; each was measured
over the people clips (`benchmarks/counting_blobs.py`).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge.detectors.onnx_objects import CLASS_NAME
from edge.types import Detections

PERSON = "person"
# The background model runs on a copy this wide: people 60 px tall in a 576 px frame are still ~30 px.
WORK_WIDTH = 320
# MOG2's memory, in frames: someone standing still for a few seconds stays foreground; a parked
# object becomes background after ~this many frames (30 s at 10 fps).
HISTORY_FRAMES = 300
# MOG2 marks shadows with this value (and foreground with 255): shadows are not people.
SHADOW = 127
# Walking people's blobs over the five people clips: 5th percentile 0.07 % of the frame, median 0.33 %;
# at 0.1 % the threshold keeps 93 % of them and drops 69 % of the other blobs (speckle, leaves, reflections).
MIN_AREA_FRACTION = 0.001
# More than this share of the frame changed at once is light (a cloud, auto-exposure, a lamp), not
# people: at most 23 % in the busiest frame of any clip (the crowd), 89-95 % when the light changed.
LIGHT_CHANGE_SHARE = 0.35
# A body's parts that came apart (clothes the colour of the wall between head and legs) are joined
# when one lies above the other: overlapping across by at least half the narrower box, and apart
# vertically by at most half the taller box's height.
SAME_BODY_OVERLAP = 0.5
SAME_BODY_GAP = 0.5
# Closing joins limbs to the body: a kernel 3 % of the frame high, half as wide (people are upright).
CLOSE_HEIGHT_FRACTION = 0.03


class MotionPeopleDetector:
    """Person boxes from background subtraction; `update` must see every frame of one camera, in order."""

    def __init__(self, min_area_fraction: float = MIN_AREA_FRACTION, work_width: int = WORK_WIDTH) -> None:
        self._min_area_fraction = min_area_fraction
        self._work_width = work_width
        self._background = cv2.createBackgroundSubtractorMOG2(
            history=HISTORY_FRAMES, varThreshold=16, detectShadows=True
        )
        self.last_mask: npt.NDArray[np.uint8] | None = None  # the cleaned foreground (work size), for drawing

    def update(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """Learn from this frame; the people (moving blobs) in it, boxes in its pixels, `CLASS_NAME` person."""
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self._work_width / width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA) if scale < 1 else image_bgr
        foreground = self._background.apply(small) == 255  # shadows (127) and background (0) are not people
        if float(foreground.mean()) > LIGHT_CHANGE_SHARE:
            # The light changed: learn the new scene at once rather than see the whole frame as people.
            self._background.apply(small, learningRate=1.0)
            self.last_mask = np.zeros(foreground.shape, np.uint8)
            return person_boxes(np.empty((0, 4), np.float32))
        mask = cleaned(foreground.astype(np.uint8))
        self.last_mask = mask
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        min_area = self._min_area_fraction * mask.size
        boxes = [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:count] if area >= min_area]
        joined = join_body_parts(np.array(boxes, np.float32).reshape(-1, 4))
        return person_boxes(joined / scale)


def cleaned(mask: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Speckle off (a 3x3 opening), then a person's limbs and body joined (an upright closing)."""
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    high = max(3, round(CLOSE_HEIGHT_FRACTION * mask.shape[0])) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (high // 2 | 1, high))
    closed: npt.NDArray[np.uint8] = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, kernel)
    return closed


def join_body_parts(boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Boxes one above the other (overlapping across, near vertically) joined into one, until none are."""
    merged = [box.copy() for box in boxes]
    joined = True
    while joined:
        joined = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                if _same_body(merged[i], merged[j]):
                    a, b = merged[i], merged.pop(j)
                    merged[i] = np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])])
                    joined = True
                    break
            if joined:
                break
    return np.array(merged, np.float32).reshape(-1, 4)


def _same_body(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> bool:
    across = min(a[2], b[2]) - max(a[0], b[0])
    narrower = min(a[2] - a[0], b[2] - b[0])
    gap = max(a[1], b[1]) - min(a[3], b[3])  # negative where they overlap vertically
    taller = max(a[3] - a[1], b[3] - b[1])
    return bool(across >= SAME_BODY_OVERLAP * narrower and gap <= SAME_BODY_GAP * taller)


def person_boxes(xyxy: npt.NDArray[np.float32]) -> Detections:
    return Detections.from_boxes(xyxy.astype(np.float32), np.ones(len(xyxy), np.float32), None,
                                 {CLASS_NAME: np.full(len(xyxy), PERSON, "<U16")})  # fmt: skip
