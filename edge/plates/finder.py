"""Finds plates in a scene and cuts each out square to the plate (HyperLPR's Caffe models, cv2.dnn).

A MobileNet-SSD finds plate boxes; a refinement net then regresses the plate's four corners in a
loosened crop, twice, and the quadrilateral is warped flat (perspective rectification) before the
text is read. The models ship in the hyperlpr2 package (MIT); HyperLPR's own pipeline code is not
used (it stops after the first plate of a scene). The SSD was trained on single-row plates: on a
double-row plate it finds the lower row, which `edge.plates.scanner` grows into the whole plate, and
what it misses the second proposal path (`edge.plates.text_lines`) looks for.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.plates.reader import SINGLE_ROW_MIN_ASPECT
from edge.plates.text_lines import TextLineFinder
from edge.types import Detections

PLATE_ASPECT = 120 / 48
SSD_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB, as the SSD was trained
SSD_STD = np.array([0.229, 0.224, 0.225], np.float32)
SSD_MEAN_BGR = tuple(float(v) * 255 for v in SSD_MEAN[::-1])
SSD_INPUT_STEP = 32  # the SSD's input is padded up to a multiple of this (px): few shapes, little extra work
SSD_NETS_KEPT = 8  # nets kept for the input shapes last seen (each ~4 MB)
CROP = "crop"  # `Detections.data` key: each plate cut out and rectified, BGR (an object array: sizes differ)
CORNERS = "corners"  # `Detections.data` key: (N, 4, 2) TL, TR, BR, BL in the pixels of the image searched
CROP_HEIGHT = 96  # a single-row plate is cut out 96 px high: twice what the recogniser reads, for small characters
CROP_SIZE = (362, CROP_HEIGHT)  # width: the aspect of HyperLPR's 136 x 36 crops (the plate with a margin)
DOUBLE_ROW_HEIGHT = 96  # a double-row plate: each row about the recogniser's height


def rectify(image: npt.NDArray[np.uint8], corners: npt.NDArray[np.float32], size: tuple[int, int]) -> np.ndarray:
    """The quadrilateral `corners` (TL, TR, BR, BL) of `image` warped flat to `size` (width, height)."""
    width, height = size
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    return cv2.warpPerspective(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def quad_aspect(corners: npt.NDArray[np.float32]) -> float:
    """Width over height of a quadrilateral (TL, TR, BR, BL): its mean top and bottom edge over its mean sides."""
    tl, tr, br, bl = corners.astype(np.float64)
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    return float(width / max(height, 1e-6))


def grown(corners: npt.NDArray[np.float32], x: float, top: float, bottom: float) -> npt.NDArray[np.float32]:
    """The quadrilateral (TL, TR, BR, BL) grown along its own sides: by `x` of its width left and right,
    `top` and `bottom` of its height above and below."""
    tl, tr, br, bl = corners.astype(np.float64)
    across_top, across_bottom = tr - tl, br - bl
    down_left, down_right = bl - tl, br - tr
    return np.array([
        tl - x * across_top - top * down_left,
        tr + x * across_top - top * down_right,
        br + x * across_bottom + bottom * down_right,
        bl - x * across_bottom + bottom * down_left,
    ], np.float32)  # fmt: skip


def crop_size(corners: npt.NDArray[np.float32]) -> tuple[int, int]:
    """How big to cut a plate out: single-row plates as `CROP_SIZE`; a squarer quadrilateral (a double-row
    plate, or a single-row one seen at an angle) keeps its aspect, `DOUBLE_ROW_HEIGHT` high so that each
    row has about the recogniser's height."""
    aspect = quad_aspect(corners)
    if aspect >= SINGLE_ROW_MIN_ASPECT:
        return CROP_SIZE
    return max(8, round(DOUBLE_ROW_HEIGHT * aspect)), DOUBLE_ROW_HEIGHT


def crops_array(crops: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.object_]:
    """Crops of different sizes as one object array (`Detections.data` rows)."""
    array = np.empty(len(crops), object)
    for i, crop in enumerate(crops):
        array[i] = crop
    return array


class PlateFinder:
    def __init__(
        self,
        ssd: tuple[Path, Path],
        refine: tuple[Path, Path],
        max_width: int = 1280,
        min_score: float = 0.5,
        lines: TextLineFinder | None = None,
    ) -> None:
        self._ssd_files = ssd
        self._ssd_nets: OrderedDict[tuple[int, int], cv2.dnn.Net] = OrderedDict()
        self._refine = cv2.dnn.readNetFromCaffe(str(refine[0]), str(refine[1]))
        self._max_width = max_width
        self._min_score = min_score
        self._lines = lines

    @classmethod
    def from_models(cls, paths: dict[str, Path], max_width: int = 1280) -> PlateFinder:
        """From the verified model files (names as in models/manifest.json)."""
        lines = TextLineFinder(paths["plate_text_detector"]) if "plate_text_detector" in paths else None
        return cls((paths["plate_ssd_prototxt"], paths["plate_ssd"]),
                   (paths["plate_refine_prototxt"], paths["plate_refine"]), max_width, lines=lines)  # fmt: skip

    def find(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """Plates in a BGR scene: boxes in its pixels (whole ones), SSD scores, each plate's `CORNERS`
        and its `CROP` (rectified: `CROP_SIZE`, or `crop_size` for a squarish one)."""
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self._max_width / width)
        small = image_bgr if scale == 1.0 else cv2.resize(image_bgr, None, fx=scale, fy=scale,
                                                           interpolation=cv2.INTER_AREA)  # fmt: skip
        # Padded with the mean colour to a multiple of SSD_INPUT_STEP: few input shapes, one net each.
        net_h, net_w = (-(-side // SSD_INPUT_STEP) * SSD_INPUT_STEP for side in small.shape[:2])
        padded = cv2.copyMakeBorder(small, 0, net_h - small.shape[0], 0, net_w - small.shape[1], cv2.BORDER_CONSTANT,
                                    value=SSD_MEAN_BGR)  # fmt: skip
        blob = cv2.dnn.blobFromImage(padded, 1 / 255.0, swapRB=True)  # RGB, 0..1, (1, 3, H, W)
        blob -= SSD_MEAN[:, None, None]
        blob /= SSD_STD[:, None, None]
        ssd = self._ssd_for((net_h, net_w))
        ssd.setInput(blob)
        frame = np.array([net_w, net_h, net_w, net_h], np.float32) / scale  # the padded input, in scene pixels
        boxes, scores, corners = [], [], []
        for detection in ssd.forward()[0, 0]:
            score = float(detection[2])
            if score < self._min_score:
                continue
            x1, y1, x2, y2 = (detection[3:7] * frame).astype(int)
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width - 1, x2), min(height - 1, y2)
            if x2 - x1 < 16 or y2 - y1 < 6:
                continue
            quad = self.refine((x1, y1, x2, y2), image_bgr)
            if quad is None:
                continue
            boxes.append((x1, y1, x2, y2))
            scores.append(score)
            corners.append(quad)
        return self._cut_out(image_bgr, boxes, scores, corners)

    def _ssd_for(self, shape: tuple[int, int]) -> cv2.dnn.Net:
        """The SSD for one input shape: cv2.dnn computes the SSD's prior boxes for the first shape a net
        runs and keeps them, so a net that ran on another shape would misplace its boxes."""
        net = self._ssd_nets.pop(shape, None)
        if net is None:
            net = cv2.dnn.readNetFromCaffe(str(self._ssd_files[0]), str(self._ssd_files[1]))
            while len(self._ssd_nets) >= SSD_NETS_KEPT:
                self._ssd_nets.popitem(last=False)
        self._ssd_nets[shape] = net  # the most recently used last
        return net

    def find_text_lines(self, image_bgr: npt.NDArray[np.uint8], long_side: int | None = None) -> Detections:
        """The second proposal path: text lines that could be a plate's row (`TextLineFinder`, the image at
        most `long_side` px), each grown to its plate's corners by the refinement net, as `find` returns
        them; none without the model."""
        if self._lines is None:
            return self._cut_out(image_bgr, [], [], [])
        lines = self._lines.find(image_bgr, long_side)
        boxes, scores, corners = [], [], []
        for box, score in zip(lines.xyxy.astype(int).tolist(), lines.confidence.tolist(), strict=True):
            quad = self.refine(tuple(box), image_bgr)
            if quad is not None:  # the plate's box, not its line's: both rows of a plate then overlap
                (x1, y1), (x2, y2) = quad.min(axis=0), quad.max(axis=0)
                boxes.append((max(0, int(x1)), max(0, int(y1)), int(x2), int(y2)))
                scores.append(score)
                corners.append(quad)
        return self._cut_out(image_bgr, boxes, scores, corners)

    @staticmethod
    def _cut_out(image: npt.NDArray[np.uint8], boxes: list, scores: list, corners: list) -> Detections:
        quads = np.array(corners, np.float32).reshape(-1, 4, 2)
        crops = crops_array([rectify(image, quad, crop_size(quad)) for quad in quads])
        return Detections.from_boxes(np.array(boxes, np.float32).reshape(-1, 4), scores,
                                     data={CORNERS: quads, CROP: crops})  # fmt: skip

    def refine(self, box: tuple[int, int, int, int], image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32] | None:
        """The plate's corners (TL, TR, BR, BL, in `image`'s pixels) around a box that holds a single-row
        plate (or one row of a plate), by the refinement net; None when the box is off the image."""
        loose, (left, top) = self._loose_crop(image, box)
        if loose.size == 0 or min(loose.shape[:2]) < 2:
            return None
        # Stage 1: bring the plate to the centre of a 3x canvas; stage 2: its corners on that canvas.
        scale = 3.0
        centre = np.array([[32, 12], [96, 12], [96, 36], [32, 36]], np.float32)  # a 64x24 plate centred in 128x48
        matrix, _ = cv2.estimateAffinePartial2D(self._corners(loose).astype(np.float32), centre * scale, True)
        if matrix is None:
            h, w = loose.shape[:2]
            quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        else:
            canvas = cv2.warpAffine(loose, matrix, (int(120 * scale), int(48 * scale)))
            back = cv2.invertAffineTransform(matrix)
            quad = cv2.transform(self._corners(canvas)[None].astype(np.float32), back)[0]
        return (quad + np.array([left, top], np.float32)).astype(np.float32)

    @staticmethod
    def _loose_crop(
        image: npt.NDArray[np.uint8], box: tuple[int, int, int, int], padding: float = 1.7
    ) -> tuple[np.ndarray, tuple[int, int]]:
        x1, y1, x2, y2 = box
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        if (x2 - x1) / max(1, y2 - y1) > PLATE_ASPECT:
            w = int((x2 - x1) * padding)
            h = int(w / PLATE_ASPECT)
        else:
            h = int((y2 - y1) * padding)
            w = int(h * PLATE_ASPECT)
        left, top = max(0, cx - w // 2), max(0, cy - h // 2)
        return image[top : cy + h // 2, left : cx + w // 2], (left, top)

    def _corners(self, image: npt.NDArray[np.uint8]) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(cv2.resize(image, (120, 48)), scalefactor=0.0078125, size=(120, 48),
                                     mean=(127.5, 127.5, 127.5), swapRB=False, crop=False)  # fmt: skip
        self._refine.setInput(blob)
        height, width = image.shape[:2]
        return self._refine.forward("conv6-3").reshape(4, 2) * np.array([width, height], np.float32)
