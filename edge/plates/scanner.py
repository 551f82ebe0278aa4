"""Finds and reads every plate in a scene: the one place that decides which proposals to read and how.

1. HyperLPR's SSD proposes plates (`PlateFinder.find`); each is read as its shape says.
2. A proposal whose read breaks the grammar is cut again as a double-row plate and read row by row:
   on a double-row plate the SSD and its corner net find the plate but take it for a wide single row.
   A green plate read short of a new-energy plate is cut again wider (8 characters, 480 mm).
3. Only where no proposal read as a plate, the second path (`PlateFinder.find_text_lines`, PP-OCRv4's
   text detector) proposes text lines, read the same way. It costs more than the SSD, so a scene the
   SSD already read pays nothing for it.

Overlapping reads of one plate keep the most confident.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.plates.finder import CORNERS, CROP, CROP_SIZE, DOUBLE_ROW_HEIGHT, PlateFinder, grown, quad_aspect, rectify
from edge.plates.reader import PlateRead, PlateTextReader, plate_colour
from edge.plates.text_lines import LONG_SIDE
from edge.types import Detections

# `Detections.data` keys the scanner adds to each plate it read.
TEXT = "text"
COLOUR = "colour"
READ_CONFIDENCE = "read_confidence"
KIND = "kind"
VALID = "valid"  # the read passes the plate grammar (only those are plates)
SAME_PLATE_IOU = 0.3  # two reads whose boxes overlap this much are of one plate
TRIED_IOU = 0.6  # a text line's plate that overlaps an SSD proposal this much was read already
NEW_ENERGY_GROWTH = (0.08, 0.14)  # a green plate read short re-cut this much wider either side (of its width)
# A read this short may be a double-row plate's lower row (five characters, or four and 挂) with a stray
# character; a longer one is a single row, not worth cutting again.
LOWER_ROW_MAX = 6
THOROUGH_LONG_SIDE = 1600  # a thorough scanner's last search for text lines (px on the longer side)
DOUBLE_ROW_GROWTH = (0.0, 0.25)  # a proposal re-cut as a double-row plate as it is, then this much taller upwards


class PlateScanner:
    def __init__(self, finder: PlateFinder, reader: PlateTextReader, thorough: bool = False) -> None:
        """`thorough`: where neither path read a plate in a large image, search its text lines once more at
        up to `THOROUGH_LONG_SIDE` px (a photo read once, `gatebox plates read`: a car at a distance in a
        street photo); the box's frames, under their time budget, do not."""
        self._finder = finder
        self._reader = reader
        self._thorough = thorough

    def scan(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """The plates in a BGR scene that read as plates, one read each: boxes in its pixels, `CROP`,
        `TEXT`, `COLOUR`, `READ_CONFIDENCE` and `KIND`."""
        proposals = self.read_proposals(image_bgr)
        return _one_per_plate(proposals[proposals.data[VALID].astype(bool)])

    def read_proposals(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """Every proposal read, valid or not (`VALID`): the SSD's, and the text lines' where none of the
        SSD's read as a plate."""
        proposals = self._read(image_bgr, self._finder.find(image_bgr))
        passes = [None, THOROUGH_LONG_SIDE] if self._thorough and max(image_bgr.shape[:2]) > LONG_SIDE else [None]
        for long_side in passes:
            if proposals.data[VALID].any():
                break
            lines = self._finder.find_text_lines(image_bgr, long_side)
            new = [all(_iou(box, tried) < TRIED_IOU for tried in proposals.xyxy) for box in lines.xyxy]
            proposals = _joined(proposals, self._read(image_bgr, lines[np.array(new, bool)]))
        return proposals

    def _read(self, image: npt.NDArray[np.uint8], found: Detections) -> Detections:
        corners = found.data.get(CORNERS)
        reads = []
        for i, crop in enumerate(found.data[CROP]):
            read = self._reader.read_with_colour(crop)
            if corners is not None and read.colour == "green" and read.kind != "new_energy":
                read, crop = self._as_new_energy(image, corners[i], read, crop)
            if not read.valid and corners is not None and len(read.text) <= LOWER_ROW_MAX:
                read, crop = self._as_double_row(image, corners[i], read, crop)
            found.data[CROP][i] = crop
            reads.append(read)
        return found.with_data({
            TEXT: np.array([r.text for r in reads], str).reshape(-1),
            COLOUR: _objects([r.colour for r in reads]),  # None where no colour was told
            READ_CONFIDENCE: np.array([r.confidence for r in reads], np.float64),
            KIND: _objects([r.kind for r in reads]),
            VALID: np.array([r.valid for r in reads], bool),
        })  # fmt: skip

    def _as_new_energy(
        self, image: npt.NDArray[np.uint8], quad: npt.NDArray[np.float32], read: PlateRead, crop: np.ndarray
    ) -> tuple[PlateRead, np.ndarray]:
        """A green plate is a new-energy plate, 8 characters on a plate 480 mm wide where others are 440:
        the corner net, which learnt the narrower ones, often leaves the last character out. Cut wider."""
        for sideways in NEW_ENERGY_GROWTH:
            outline = grown(quad, sideways, 0.0, 0.0)
            wider = rectify(image, outline, (round(CROP_SIZE[0] * (1 + 2 * sideways)), CROP_SIZE[1]))
            again = self._reader.read_with_colour(wider)
            if again.kind == "new_energy":
                return again, wider
        return read, crop

    def _as_double_row(
        self, image: npt.NDArray[np.uint8], quad: npt.NDArray[np.float32], read: PlateRead, crop: np.ndarray
    ) -> tuple[PlateRead, np.ndarray]:
        """The proposal cut as a double-row plate (each row the recogniser's height) and read row by row;
        the first read and crop when that does not read as a plate either. The corner net often puts the
        plate's top edge through the upper row, so the plate is also tried grown upwards."""
        height = DOUBLE_ROW_HEIGHT
        for upwards in DOUBLE_ROW_GROWTH:
            outline = grown(quad, 0.0, upwards, 0.0)
            double = rectify(image, outline, (max(8, round(height * quad_aspect(outline))), height))
            rows = self._reader.read_double_row(double)
            if rows.valid:
                return PlateRead(rows.text, rows.confidence, rows.kind, plate_colour(double)), double
        return read, crop


def _objects(values: list[object]) -> npt.NDArray[np.object_]:
    array = np.empty(len(values), object)
    array[:] = values
    return array


def _joined(a: Detections, b: Detections) -> Detections:
    """Two sets of read proposals as one (the same `data` keys)."""
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    data = {key: np.concatenate([a.data[key], b.data[key]]) for key in a.data}
    return Detections.from_boxes(np.concatenate([a.xyxy, b.xyxy]), np.concatenate([a.confidence, b.confidence]),
                                 data=data)  # fmt: skip


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
