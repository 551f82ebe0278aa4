"""Detection stage: runs the face detector only where it can find something new.

The window is the bounding box of the moving regions and of the faces already being tracked
(a person standing still at the gate stops moving but must not be lost), grown by a margin;
a frame with neither is skipped outright.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.detectors import FaceDetector
from edge.types import Detections

# Past this share of the frame, one full-frame pass is as cheap as the crop and simpler.
FULL_FRAME_SHARE = 0.8


def detection_window(
    regions: npt.NDArray[np.float32], frame_shape: tuple[int, ...], padding: float
) -> tuple[int, int, int, int] | None:
    """One xyxy window covering every region, padded by `padding` x frame width; None if no regions."""
    if len(regions) == 0:
        return None
    height, width = frame_shape[:2]
    pad = padding * width
    x1, y1 = np.maximum(regions[:, :2].min(0) - pad, 0)
    x2, y2 = np.minimum(regions[:, 2:].max(0) + pad, (width, height))
    if (x2 - x1) * (y2 - y1) >= FULL_FRAME_SHARE * width * height:
        return 0, 0, width, height
    return int(x1), int(y1), int(x2), int(y2)


class RegionFaceDetection:
    def __init__(self, detector: FaceDetector, padding: float) -> None:
        self._detector = detector
        self._padding = padding

    def detect(self, image_bgr: npt.NDArray[np.uint8], regions: npt.NDArray[np.float32]) -> Detections | None:
        """Faces inside the window around `regions`, in frame pixels; None when nothing to look at."""
        window = detection_window(regions, image_bgr.shape, self._padding)
        if window is None:
            return None
        x1, y1, x2, y2 = window
        return self._detector.detect(image_bgr[y1:y2, x1:x2]).moved_by(x1, y1)
