"""The plate finder's second proposal path: text lines found by PP-OCRv4's text detector (DB, ONNX,
from rapidocr-onnxruntime), for the plates HyperLPR's SSD does not propose (double-row and odd
shapes, plates at a distance or on a truck's bumper).

The detector marks where text is, whatever its shape; each line that could be a plate's row (its
height, its length) becomes a box that `PlateFinder.refine` turns into the plate's corners. DB's
post-processing is RapidOCR's (threshold the probability map, score each region by its mean
probability, grow it back by the unclip ratio), without pyclipper: the regions are rectangles.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.types import Detections

# RapidOCR's settings for PP-OCRv4 det (rapidocr_onnxruntime/config.yaml).
BINARY_THRESHOLD = 0.3
MIN_BOX_SCORE = 0.5
UNCLIP_RATIO = 1.6
STRIDE = 32  # the network's input sides are multiples of this
# The scene is searched this big on its longer side: on a 720p scene, plates 60 px wide and up are
# found (the evaluation set's far cars), at about 0.8x the SSD's time.
LONG_SIDE = 640
# A plate row: its characters at least this many pixels high in the scene (the reader's floor), and
# 1 to 12 times as long as high (two characters of a double-row plate's upper row to eight characters).
MIN_LINE_HEIGHT = 8
LINE_ASPECT = (1.0, 12.0)


class TextLineFinder:
    def __init__(self, model: Path, long_side: int = LONG_SIDE, max_lines: int = 6, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._long_side = long_side
        self._max_lines = max_lines

    def find(self, image_bgr: npt.NDArray[np.uint8], long_side: int | None = None) -> Detections:
        """Text lines that could be plate rows, best first: axis-aligned boxes in `image_bgr`'s pixels and
        DB's score; at most `max_lines`. The image is searched at most `long_side` px on its longer side
        (the finder's setting by default)."""
        height, width = image_bgr.shape[:2]
        scale = min(1.0, (long_side or self._long_side) / max(height, width))
        net_h = max(STRIDE, round(height * scale / STRIDE) * STRIDE)
        net_w = max(STRIDE, round(width * scale / STRIDE) * STRIDE)
        resized = cv2.resize(image_bgr, (net_w, net_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        blob = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        (probability,) = self._session.run(None, {self._input: blob})
        probability = probability[0, 0]
        contours, _ = cv2.findContours((probability > BINARY_THRESHOLD).astype(np.uint8), cv2.RETR_LIST,
                                       cv2.CHAIN_APPROX_SIMPLE)  # fmt: skip
        sx, sy = width / net_w, height / net_h
        boxes, scores = [], []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w < 2 or h < 2:
                continue
            region = np.zeros((h, w), np.uint8)
            cv2.drawContours(region, [contour - [x, y]], -1, 1, -1)
            score = float(probability[y : y + h, x : x + w][region > 0].mean())
            if score < MIN_BOX_SCORE:
                continue
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
            grow = rw * rh * UNCLIP_RATIO / (2 * (rw + rh))  # DB shrank the text by this much; grow it back
            corners = cv2.boxPoints(((cx, cy), (rw + 2 * grow, rh + 2 * grow), angle)) * [sx, sy]
            x1, y1 = corners.min(axis=0)
            x2, y2 = corners.max(axis=0)
            line_height = min(rw + 2 * grow, rh + 2 * grow) * sy
            aspect = max(rw, rh) / max(1e-6, min(rw, rh))
            if line_height < MIN_LINE_HEIGHT or not LINE_ASPECT[0] <= aspect <= LINE_ASPECT[1]:
                continue
            boxes.append((max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)))
            scores.append(score)
        order = np.argsort(scores)[::-1][: self._max_lines]
        return Detections.from_boxes(np.array(boxes, np.float32).reshape(-1, 4)[order], np.array(scores)[order])
