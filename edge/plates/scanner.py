"""Finds and reads every plate in a scene: the one place that decides which proposals to read and how.

1. HyperLPR's SSD proposes plates (`PlateFinder.find`); each is read as its shape says.
2. A proposal whose read breaks the grammar is cut again as a double-row plate and read row by row:
   on a double-row plate the SSD and its corner net find the plate but take it for a wide single row.
3. Only where no proposal read as a plate, the second path (`PlateFinder.find_text_lines`, PP-OCRv4's
   text detector) proposes text lines, read the same way. It costs more than the SSD, so a scene the
   SSD already read pays nothing for it.

Overlapping reads of one plate keep the most confident.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.plates.finder import CORNERS, CROP, CROP_HEIGHT, PlateFinder, quad_aspect, rectify
from edge.plates.reader import PlateRead, PlateTextReader, plate_colour
from edge.types import Detections

# `Detections.data` keys the scanner adds to each plate it read.
TEXT = "text"
COLOUR = "colour"
READ_CONFIDENCE = "read_confidence"
KIND = "kind"
SAME_PLATE_IOU = 0.3  # two reads whose boxes overlap this much are of one plate


class PlateScanner:
    def __init__(self, finder: PlateFinder, reader: PlateTextReader) -> None:
        self._finder = finder
        self._reader = reader

    def scan(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """The plates in a BGR scene that read as plates: boxes in its pixels, `CROP`, `TEXT`, `COLOUR`,
        `READ_CONFIDENCE` and `KIND`."""
        plates = self._read(image_bgr, self._finder.find(image_bgr))
        if len(plates) == 0:
            plates = self._read(image_bgr, self._finder.find_text_lines(image_bgr))
        return _one_per_plate(plates)

    def _read(self, image: npt.NDArray[np.uint8], found: Detections) -> Detections:
        corners = found.data.get(CORNERS)
        reads = []
        for i, crop in enumerate(found.data[CROP]):
            read = self._reader.read_with_colour(crop)
            if not read.valid and corners is not None:
                read, crop = self._as_double_row(image, corners[i], read, crop)
                found.data[CROP][i] = crop
            reads.append(read)
        read = found.with_data({
            TEXT: np.array([r.text for r in reads], str),
            COLOUR: np.array([r.colour for r in reads], object),  # None where no colour was told
            READ_CONFIDENCE: np.array([r.confidence for r in reads], np.float64),
            KIND: np.array([r.kind for r in reads], object),
        })  # fmt: skip
        return read[np.array([r.valid for r in reads], bool)]

    def _as_double_row(
        self, image: npt.NDArray[np.uint8], quad: npt.NDArray[np.float32], read: PlateRead, crop: np.ndarray
    ) -> tuple[PlateRead, np.ndarray]:
        """The proposal cut as a double-row plate (each row the recogniser's height) and read row by row;
        the first read and crop when that does not read as a plate either."""
        height = 2 * CROP_HEIGHT
        double = rectify(image, quad, (max(8, round(height * quad_aspect(quad))), height))
        rows = self._reader.read_double_row(double)
        if not rows.valid:
            return read, crop
        return PlateRead(rows.text, rows.confidence, rows.kind, plate_colour(double)), double


def _one_per_plate(plates: Detections) -> Detections:
    """The most confident read of each plate where reads overlap."""
    keep: list[int] = []
    for i in np.argsort(-plates.data[READ_CONFIDENCE]).tolist() if len(plates) else []:
        if all(_iou(plates.xyxy[i], plates.xyxy[k]) < SAME_PLATE_IOU for k in keep):
            keep.append(i)
    return plates[sorted(keep)]


def _iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
