"""`gatebox camera preview`: what the box sees through one camera, drawn for the installer.

A few frames are read from the camera (or a file or stream URL), the motion gate runs over them as it
does in `run`, and the last frame is written as a PNG with, on top:

- a grid at every tenth of the frame, labelled in fractions: the units of `gate_line`;
- the gate line (its ends labelled with their fractions), the band of `margin` around it that a face
  must get past, and an arrow towards `outside` marked OUT (leaving) with IN on the other side;
- the regions that moved and the window the face detector looks at in them;
- every face the detector finds in the whole frame (wide enough to recognise or not), and the plates
  read when `plates.enabled`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import CameraConfig, GateboxConfig, GateLineConfig
from edge.detectors import build_face_detector
from edge.detectors.regions import detection_window
from edge.models import verify_models
from edge.motion.detector import MotionDetector
from edge.protocol.errors import GateboxError, InputError
from edge.sources.video import open_capture

if TYPE_CHECKING:
    from edge.plates.finder import PlateFinder
    from edge.plates.reader import PlateTextReader

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
Colour = tuple[int, int, int]  # BGR

# Colours (BGR), chosen apart from each other and from skin and sky; the README's legend names them.
LINE_COLOUR: Colour = (0, 255, 255)  # yellow: the gate line
MARGIN_COLOUR: Colour = (0, 160, 255)  # orange: the margin band around it
OUT_COLOUR: Colour = (0, 0, 255)  # red: the OUT (leaving) arrow
IN_COLOUR: Colour = (255, 255, 0)  # cyan: IN
MOTION_COLOUR: Colour = (255, 0, 255)  # magenta: regions that moved
WINDOW_COLOUR: Colour = (255, 128, 0)  # blue: where the face detector looks
FACE_COLOUR: Colour = (0, 255, 0)  # green: a face wide enough to recognise
SMALL_FACE_COLOUR: Colour = (0, 0, 200)  # dark red: a face too narrow (recognition.min_face_px)
PLATE_COLOUR: Colour = (255, 255, 255)  # white: a plate
GRID_COLOUR: Colour = (200, 200, 200)


@dataclass
class Preview:
    """What one camera shows: the frame drawn on, and what was found in it."""

    image: Image
    source: str
    frames_read: int
    gate_line: GateLineConfig | None
    faces: list[tuple[tuple[int, int, int, int], float]] = field(default_factory=list)  # box, score
    small_faces: int = 0  # of those, narrower than recognition.min_face_px
    moving: list[tuple[int, int, int, int]] = field(default_factory=list)
    window: tuple[int, int, int, int] | None = None
    plates: list[tuple[tuple[int, int, int, int], str]] = field(default_factory=list)  # box, text read

    def summary(self) -> list[str]:
        height, width = self.image.shape[:2]
        lines = [f"{self.source}: {width}x{height}, the last of {self.frames_read} frame(s) read"]
        recognisable = len(self.faces) - self.small_faces
        lines.append(f"faces: {len(self.faces)} found, {recognisable} wide enough to recognise"
                     + (f", {self.small_faces} too narrow" if self.small_faces else ""))  # fmt: skip
        window = "none (nothing moved)"
        if self.window is not None:
            x1, y1, x2, y2 = self.window
            window = f"x {x1}-{x2}, y {y1}-{y2}"
        if self.window is None and self.frames_read == 1:  # nothing to compare with: the motion gate has no regions
            window = "not shown (drawn from one frame: nothing to compare it with)"
        lines.append(f"moving regions: {len(self.moving)}; detection window: {window}")
        if self.plates:
            lines.append("plates: " + ", ".join(text or "?" for _, text in self.plates))
        if self.gate_line is None:
            lines.append("gate line: none configured (set cameras[].gate_line, or try one with --gate-line)")
        else:
            line = self.gate_line
            lines.append(f"gate line: start {list(line.start)}, end {list(line.end)}, outside {list(line.outside)}, "
                         f"margin {line.margin}")  # fmt: skip
        return lines


def parse_gate_line(text: str) -> GateLineConfig:
    """`X1,Y1,X2,Y2,OX,OY` (fractions of the frame): start, end and a point on the outer side."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 6 or not all(0.0 <= v <= 1.0 for v in values):
        raise InputError(f"--gate-line {text!r}: give six fractions 0-1: X1,Y1,X2,Y2,OUTSIDE_X,OUTSIDE_Y")
    return GateLineConfig(start=(values[0], values[1]), end=(values[2], values[3]), outside=(values[4], values[5]))


def grab_frames(source: str, camera: CameraConfig | None, count: int) -> list[Image]:
    """Up to `count` consecutive frames from `source`, opened with the camera's timeouts."""
    open_timeout, read_timeout = (camera.open_timeout_s, camera.read_timeout_s) if camera else (5.0, 5.0)
    capture = open_capture(source, open_timeout, read_timeout, camera.hw_decode if camera else False)
    try:
        if not capture.isOpened():
            raise InputError(f"cannot open {source}: check the URL (user, password, path) or the file")
        frames: list[Image] = []
        while len(frames) < count:
            ok, image = capture.read()
            if not ok or image is None:
                break
            frames.append(image)
    finally:
        capture.release()
    if not frames:
        raise InputError(f"{source} opened but delivered no frame within {read_timeout:.0f} s")
    return frames


def _box(values: npt.ArrayLike) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (round(float(v)) for v in np.asarray(values).reshape(4))
    return x1, y1, x2, y2


class PreviewRenderer:
    """The face detector (and plate reader) a preview runs, loaded once: `gatebox camera preview` draws one
    preview with it; a running box (`edge.remote_preview`) draws one whenever the centre asks."""

    def __init__(self, config: GateboxConfig) -> None:
        self._config = config
        self._paths = verify_models(config.models_path)
        self._detector = build_face_detector(config.detector, self._paths)
        self._plates: tuple[PlateFinder, PlateTextReader] | None = None

    def render(self, images: list[Image], source: str, gate_line: GateLineConfig | None) -> Preview:
        """Run the motion gate over `images` and the face detector (and plate reader) on the last, and
        draw everything on a copy of it. One image shows no moving regions (nothing to compare with)."""
        config = self._config
        motion = MotionDetector(config.motion)
        moving = np.empty((0, 4), np.float32)
        for image in images:
            moving = motion.update(image)
        last = images[-1]
        found = self._detector.detect(last)  # the whole frame: what could be recognised anywhere in view
        preview = Preview(last.copy(), source, len(images), gate_line)
        min_width = config.recognition.min_face_px
        for xyxy, score in zip(found.xyxy, found.confidence.tolist(), strict=True):
            box = _box(xyxy)
            preview.faces.append((box, score))
            preview.small_faces += box[2] - box[0] < min_width
        # With the motion gate off, the pipeline looks at the whole frame every time.
        regions = moving if config.motion.enabled else np.array([[0, 0, last.shape[1], last.shape[0]]], np.float32)
        preview.moving = [_box(r) for r in regions] if config.motion.enabled and len(images) > 1 else []
        if not config.motion.enabled or len(images) > 1:  # one frame: the motion gate has nothing to compare with
            preview.window = detection_window(regions, last.shape, config.motion.region_padding)
        if config.plates.enabled:
            preview.plates = self._read_plates(last)
        draw(preview, min_width)
        return preview

    def _read_plates(self, image: Image) -> list[tuple[tuple[int, int, int, int], str]]:
        from edge.plates.finder import CROP, PlateFinder
        from edge.plates.reader import PlateTextReader

        if self._plates is None:
            self._plates = (PlateFinder.from_models(self._paths, self._config.plates.max_width),
                            PlateTextReader(self._paths["plate_text_recogniser"]))  # fmt: skip
        finder, reader = self._plates
        found = finder.find(image)
        return [(_box(xyxy), reader.read(crop).text) for xyxy, crop in zip(found.xyxy, found.data[CROP], strict=True)]


def make_preview(
    config: GateboxConfig, source: str, camera: CameraConfig | None, gate_line: GateLineConfig | None, frames: int
) -> Preview:
    """Read `frames` frames from `source`, run the motion gate over them and the face detector (and
    plate reader) on the last, and draw everything on it."""
    return PreviewRenderer(config).render(grab_frames(source, camera, frames), source, gate_line)


def label(image: Image, text: str, origin: tuple[int, int], colour: Colour, scale: float) -> None:
    """Text on a dark backing, kept inside the image. cv2 draws ASCII only: anything else becomes '?'."""
    text = text.encode("ascii", "replace").decode()
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(min(max(origin[0], 0), image.shape[1] - w - 2))
    y = int(min(max(origin[1], h + 2), image.shape[0] - base - 2))
    cv2.rectangle(image, (x - 2, y - h - 2), (x + w + 2, y + base + 2), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def _grid(image: Image, scale: float) -> None:
    """Faint lines at every tenth of the frame, labelled 0.1 … 0.9 along the top and the left edge."""
    height, width = image.shape[:2]
    overlay = image.copy()
    for tenth in range(1, 10):
        x, y = round(width * tenth / 10), round(height * tenth / 10)
        cv2.line(overlay, (x, 0), (x, height - 1), GRID_COLOUR, 1)
        cv2.line(overlay, (0, y), (width - 1, y), GRID_COLOUR, 1)
    cv2.addWeighted(overlay, 0.35, image, 0.65, 0, dst=image)
    for tenth in range(1, 10):
        label(image, f"{tenth / 10:.1f}", (round(width * tenth / 10) + 2, 0), GRID_COLOUR, scale * 0.8)
        label(image, f"{tenth / 10:.1f}", (2, round(height * tenth / 10) - 2), GRID_COLOUR, scale * 0.8)


def draw_gate_line(image: Image, line: GateLineConfig, scale: float) -> None:
    height, width = image.shape[:2]
    size = np.array([width, height], np.float64)
    start, end = np.array(line.start, np.float64), np.array(line.end, np.float64)
    direction = end - start
    length = float(np.hypot(*direction))
    if length == 0:
        raise InputError("the gate line's start and end are the same point")
    normal = np.array([-direction[1], direction[0]]) / length  # in fractions, as LineCrossing measures
    if float(np.dot(np.array(line.outside) - start, normal)) < 0:
        normal = -normal  # now points outside
    thickness = max(2, round(3 * scale))

    def px(point: npt.NDArray[np.float64]) -> tuple[int, int]:
        x, y = (point * size).tolist()
        return round(x), round(y)

    for side in (-1, 1):  # the margin band: a face must get past it to count as on that side
        offset = normal * line.margin * side
        cv2.line(image, px(start + offset), px(end + offset), MARGIN_COLOUR, 1, cv2.LINE_AA)
    middle = (start + end) / 2
    arrow = max(0.1, 3 * line.margin)
    cv2.arrowedLine(image, px(middle), px(middle + normal * arrow), OUT_COLOUR, thickness, cv2.LINE_AA,
                    tipLength=0.3)  # fmt: skip
    cv2.circle(image, px(np.array(line.outside, np.float64)), max(4, thickness * 2), OUT_COLOUR, -1)
    label(image, "OUT (leaving)", px(middle + normal * (arrow + 0.03)), OUT_COLOUR, scale)
    label(image, "IN", px(middle - normal * (arrow * 0.6)), IN_COLOUR, scale)
    label(image, f"start {line.start[0]:g},{line.start[1]:g}", px(start - normal * 0.03), LINE_COLOUR, scale)
    label(image, f"end {line.end[0]:g},{line.end[1]:g}", px(end - normal * 0.03), LINE_COLOUR, scale)
    # The line itself last, in one solid colour (no anti-aliasing): it stays exact along its length.
    cv2.line(image, px(start), px(end), LINE_COLOUR, thickness, cv2.LINE_8)


def draw(preview: Preview, min_face_px: int) -> None:
    image = preview.image
    scale = max(0.4, image.shape[1] / 1600)
    _grid(image, scale)
    for x1, y1, x2, y2 in preview.moving:
        cv2.rectangle(image, (x1, y1), (x2, y2), MOTION_COLOUR, 1)
    if preview.window is not None:
        x1, y1, x2, y2 = preview.window
        cv2.rectangle(image, (x1, y1), (x2, y2), WINDOW_COLOUR, 2)
        label(image, "detection window", (x1 + 4, y2 - 6), WINDOW_COLOUR, scale)
    for (x1, y1, x2, y2), score in preview.faces:
        small = x2 - x1 < min_face_px
        colour = SMALL_FACE_COLOUR if small else FACE_COLOUR
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        label(image, f"{x2 - x1}px{' too small' if small else ''} {score:.2f}", (x1, y1 - 4), colour, scale * 0.8)
    for (x1, y1, x2, y2), text in preview.plates:
        cv2.rectangle(image, (x1, y1), (x2, y2), PLATE_COLOUR, 2)
        label(image, text or "plate", (x1, y2 + 16), PLATE_COLOUR, scale)
    if preview.gate_line is not None:
        draw_gate_line(image, preview.gate_line, scale)


def write_png(preview: Preview, path: Path) -> None:
    try:
        ok = cv2.imwrite(str(path), preview.image) if path.suffix.lower() == ".png" else False
    except cv2.error:
        ok = False
    if not ok:
        raise GateboxError(f"cannot write {path}: give a .png path in a writable folder")
