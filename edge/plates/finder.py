"""Finds plates in a scene and cuts each out square to the plate (HyperLPR's Caffe models, cv2.dnn).

A MobileNet-SSD finds plate boxes; a refinement net then regresses the plate's four corners in a
loosened crop, twice, and the quadrilateral is warped flat (perspective rectification) before the
text is read. The models ship in the hyperlpr2 package (MIT); HyperLPR's own pipeline code is not
used (it stops after the first plate of a scene).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import Detections

PLATE_ASPECT = 120 / 48
SSD_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB, as the SSD was trained
SSD_STD = np.array([0.229, 0.224, 0.225], np.float32)
CROP = "crop"  # `Detections.data` key: each plate cut out and rectified, (N, 36, 136, 3) BGR
CROP_SIZE = (136, 36)


class PlateFinder:
    def __init__(
        self, ssd: tuple[Path, Path], refine: tuple[Path, Path], max_width: int = 1280, min_score: float = 0.5
    ) -> None:
        self._ssd = cv2.dnn.readNetFromCaffe(str(ssd[0]), str(ssd[1]))
        self._refine = cv2.dnn.readNetFromCaffe(str(refine[0]), str(refine[1]))
        self._max_width = max_width
        self._min_score = min_score

    @classmethod
    def from_models(cls, paths: dict[str, Path], max_width: int = 1280) -> PlateFinder:
        """From the verified model files (names as in models/manifest.json)."""
        return cls((paths["plate_ssd_prototxt"], paths["plate_ssd"]),
                   (paths["plate_refine_prototxt"], paths["plate_refine"]), max_width)  # fmt: skip

    def find(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """Plates in a BGR scene: boxes in its pixels (whole ones), SSD scores, and each plate's `CROP`."""
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self._max_width / width)
        small = image_bgr if scale == 1.0 else cv2.resize(image_bgr, None, fx=scale, fy=scale,
                                                           interpolation=cv2.INTER_AREA)  # fmt: skip
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        self._ssd.setInput(((rgb - SSD_MEAN) / SSD_STD).transpose(2, 0, 1)[None])
        boxes, scores, crops = [], [], []
        for detection in self._ssd.forward()[0, 0]:
            score = float(detection[2])
            if score < self._min_score:
                continue
            x1, y1, x2, y2 = (detection[3:7] * [width, height, width, height]).astype(int)
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width - 1, x2), min(height - 1, y2)
            if x2 - x1 < 16 or y2 - y1 < 6:
                continue
            loose = self._loose_crop(image_bgr, (x1, y1, x2, y2))
            if loose.size == 0:
                continue
            boxes.append((x1, y1, x2, y2))
            scores.append(score)
            crops.append(self._rectify(loose))
        crop_rows = np.stack(crops) if crops else np.empty((0, CROP_SIZE[1], CROP_SIZE[0], 3), np.uint8)
        return Detections.from_boxes(boxes, scores, data={CROP: crop_rows})

    @staticmethod
    def _loose_crop(image: npt.NDArray[np.uint8], box: tuple[int, int, int, int], padding: float = 1.7) -> np.ndarray:
        x1, y1, x2, y2 = box
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        if (x2 - x1) / max(1, y2 - y1) > PLATE_ASPECT:
            w = int((x2 - x1) * padding)
            h = int(w / PLATE_ASPECT)
        else:
            h = int((y2 - y1) * padding)
            w = int(h * PLATE_ASPECT)
        return image[max(0, cy - h // 2) : cy + h // 2, max(0, cx - w // 2) : cx + w // 2]

    def _corners(self, image: npt.NDArray[np.uint8]) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(cv2.resize(image, (120, 48)), scalefactor=0.0078125, size=(120, 48),
                                     mean=(127.5, 127.5, 127.5), swapRB=False, crop=False)  # fmt: skip
        self._refine.setInput(blob)
        height, width = image.shape[:2]
        return self._refine.forward("conv6-3").reshape(4, 2) * np.array([width, height], np.float32)

    def _rectify(self, loose: npt.NDArray[np.uint8], scale: float = 3.0) -> npt.NDArray[np.uint8]:
        # Stage 1: bring the plate to the centre of a 3x canvas; stage 2: corners on that, then flatten.
        centre = np.array([[32, 12], [96, 12], [96, 36], [32, 36]], np.float32)  # a 64x24 plate centred in 128x48
        matrix, _ = cv2.estimateAffinePartial2D(self._corners(loose).astype(np.float32), centre * scale, True)
        if matrix is None:
            return cv2.resize(loose, CROP_SIZE)
        canvas = cv2.warpAffine(loose, matrix, (int(120 * scale), int(48 * scale)))
        corners = self._corners(canvas).astype(np.float32)
        width, height = CROP_SIZE
        target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        return cv2.warpPerspective(canvas, cv2.getPerspectiveTransform(corners, target), CROP_SIZE)
