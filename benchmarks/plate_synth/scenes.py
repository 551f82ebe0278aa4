"""Rendered plates warped onto real car scenes, as a gate camera would see them, with their truth.

Three kinds of scene, every one about 720p (the box's working size):

* `ccpd`: a shared CCPD photo (720 x 1160, cut to 720 x 720 around the plate). Its real plate is
  painted out (inpainted at its ground-truth box) and the rendered one put in its place, sized by the
  real one (pixels per mm of a 440 mm plate) - the near view of a gate camera.
* `video_near`: a frame of ../shared/data/video/parking_lot_cars.mp4 or parking_car_cyclist.gif, cut
  around a car and scaled to 1280 x 720; the plate goes where the car's own plate is (hand-marked
  below), painted out first, 90-140 px wide.
* `video_far`: the whole frame scaled to 1280 x 720, the car at a distance: the plate 60-90 px wide.

Every plate is tilted in 3-D (yaw, pitch, roll) and projected, worn (dirt, shadow, glare), may sit in
a dark plastic holder; the scene may be taken at night (low gain, the retro-reflective plate brighter
than the scene, sensor noise), dim or overexposed, off in white balance, blurred (motion, defocus),
and is always JPEG-compressed. The truth (text, type, colour, the four corners in the scene) comes out
of the code that draws it. Deterministic from the seed.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from benchmarks.plate_synth.plates import PLATE_TYPES, PX_PER_MM, Plate, render, type_seed

Image = npt.NDArray[np.uint8]
Source = Literal["ccpd", "video_near", "video_far"]
SOURCES: tuple[Source, ...] = ("ccpd", "ccpd", "video_near", "video_far")  # scene i of a type: SOURCES[i % 4]
SCENE_SIZE = (1280, 720)  # video scenes; CCPD scenes are 720 x 720 (the photos are 720 wide)
CCPD_PLATE_MM = 440  # the CCPD plates are blue 440 mm plates: their width gives the scene's pixels per mm
US_PLATE_MM = 305  # the videos' cars carry 12 inch plates: their width gives the frame's pixels per mm
NEAR_VIDEO_PX = (90.0, 140.0)  # plate width in a video_near scene
FAR_PX = (60.0, 90.0)  # plate width for a car at a distance


@dataclass(frozen=True)
class Anchor:
    """Where a car's own plate is in a video frame (marked by hand on the frames, in the frame's pixels)."""

    video: str
    frame: int
    centre: tuple[float, float]
    width: float  # of the car's (US) plate
    roll: float = 0.0  # degrees, clockwise positive


ANCHORS = (
    Anchor("parking_lot_cars.mp4", 200, (173.5, 246.0), 25),
    Anchor("parking_lot_cars.mp4", 208, (153.0, 400.5), 26),
    Anchor("parking_lot_cars.mp4", 208, (408.0, 376.0), 28),
    Anchor("parking_lot_cars.mp4", 328, (212.0, 248.5), 24),
    Anchor("parking_car_cyclist.gif", 4, (95.5, 260.0), 15),
    Anchor("parking_car_cyclist.gif", 8, (107.0, 234.5), 14),
    Anchor("parking_car_cyclist.gif", 12, (113.0, 206.5), 14),
    Anchor("parking_car_cyclist.gif", 16, (127.0, 177.0), 14),
    Anchor("parking_car_cyclist.gif", 20, (127.5, 152.0), 13),
    Anchor("parking_car_cyclist.gif", 24, (131.0, 128.5), 14, -4.0),
    Anchor("parking_car_cyclist.gif", 28, (125.5, 104.5), 13, -10.0),
)


@dataclass(frozen=True)
class Scene:
    image: Image  # BGR
    kind: str  # plate type (a key of PLATE_TYPES)
    text: str
    colour: str
    rows: int
    corners: npt.NDArray[np.float32]  # 4 x 2: top-left, top-right, bottom-right, bottom-left (scene px)
    source: str  # the background: a CCPD file, or video#frame
    scale: Source
    effects: tuple[str, ...]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The plate's axis-aligned bounding box, xyxy."""
        x1, y1 = np.floor(self.corners.min(axis=0)).astype(int)
        x2, y2 = np.ceil(self.corners.max(axis=0)).astype(int)
        return int(x1), int(y1), int(x2), int(y2)

    def truth(self) -> dict[str, object]:
        corners = np.round(self.corners.astype(np.float64), 1).tolist()
        return {"type": self.kind, "text": self.text, "colour": self.colour, "rows": self.rows,
                "corners": corners, "box": list(self.box), "source": self.source, "scale": self.scale,
                "effects": list(self.effects)}  # fmt: skip


def data_root() -> Path:
    repo = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("GATEBOX_TEST_DATA", repo.parent / "shared" / "data"))


def missing_data(root: Path | None = None) -> str | None:
    """Why scenes cannot be made here (a data file absent), or None."""
    root = root or data_root()
    needed = [root / "plates_cn" / "ccpd" / "ground_truth.csv", *(root / "video" / a.video for a in ANCHORS)]
    absent = [str(p) for p in needed if not p.is_file()]
    return f"shared data not found: {', '.join(sorted(set(absent)))}" if absent else None


# ---------------------------------------------------------------- backgrounds


@cache
def _ccpd_rows(root: Path) -> tuple[dict[str, str], ...]:
    with (root / "plates_cn" / "ccpd" / "ground_truth.csv").open(encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


def _paint_out(image: Image, box: tuple[float, float, float, float]) -> Image:
    """The image with the region `box` (xyxy) filled in from its surroundings."""
    mask = np.zeros(image.shape[:2], np.uint8)
    x1, y1, x2, y2 = (round(v) for v in box)
    mask[max(0, y1) : y2, max(0, x1) : x2] = 255
    return cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA)


@cache
def ccpd_background(root: Path, index: int) -> tuple[Image, tuple[int, int, int, int]]:
    """CCPD photo `index` with its plate painted out, and the plate's ground-truth box."""
    row = _ccpd_rows(root)[index]
    image = cv2.imread(str(root / "plates_cn" / "ccpd" / row["file"]))
    box = tuple(int(row[k]) for k in ("x1", "y1", "x2", "y2"))
    w, h = box[2] - box[0], box[3] - box[1]
    image = _paint_out(image, (box[0] - 0.08 * w, box[1] - 0.15 * h, box[2] + 0.08 * w, box[3] + 0.15 * h))
    image.flags.writeable = False
    return image, box  # type: ignore[return-value]


@cache
def video_frame(root: Path, video: str, frame: int) -> Image:
    """Frame `frame` of a shared video with every marked plate on it painted out."""
    capture = cv2.VideoCapture(str(root / "video" / video))
    image = None
    for _ in range(frame + 1):
        ok, image = capture.read()
        if not ok:
            raise ValueError(f"{video} has no frame {frame}")
    capture.release()
    assert image is not None
    for anchor in ANCHORS:
        if (anchor.video, anchor.frame) == (video, frame):
            (cx, cy), w = anchor.centre, anchor.width
            image = _paint_out(image, (cx - 0.7 * w, cy - 0.45 * w, cx + 0.7 * w, cy + 0.45 * w))
    image.flags.writeable = False
    return image


# ---------------------------------------------------------------- geometry


def projected_corners(size_mm: tuple[int, int], yaw: float, pitch: float, roll: float) -> npt.NDArray[np.float64]:
    """The plate's corners (TL, TR, BR, BL) in mm after a 3-D rotation, seen by a pinhole camera 4 plate
    widths away (a front-on plate keeps its mm coordinates), centred on the origin."""
    w, h = size_mm
    corners = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]], np.float64)
    a, b, c = (math.radians(v) for v in (pitch, yaw, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    rotated = corners @ (rz @ ry @ rx).T
    distance = 4.0 * max(w, 440)
    projected = rotated[:, :2] * distance / (distance + rotated[:, 2:3])
    return projected - projected.mean(axis=0)


def rectify(image: Image, corners: npt.NDArray[np.float32], size: tuple[int, int]) -> Image:
    """The quadrilateral `corners` (TL, TR, BR, BL) of `image` warped flat to `size` (width, height)."""
    w, h = size
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_AREA if w < 200 else cv2.INTER_LINEAR)


def _paste(scene: npt.NDArray[np.float32], plate: Image, alpha: npt.NDArray[np.float32],
           src: npt.NDArray[np.float32], dst: npt.NDArray[np.float32]) -> None:  # fmt: skip
    """Warp `plate` (with `alpha`) so that its points `src` land on the scene's `dst`, and blend it in."""
    height, width = scene.shape[:2]
    matrix = cv2.getPerspectiveTransform(src, dst)
    ph, pw = plate.shape[:2]
    outline = cv2.perspectiveTransform(np.array([[[0, 0], [pw, 0], [pw, ph], [0, ph]]], np.float32), matrix)[0]
    x1, y1 = np.maximum(np.floor(outline.min(axis=0)).astype(int) - 2, 0)
    x2, y2 = np.minimum(np.ceil(outline.max(axis=0)).astype(int) + 2, [width, height])
    if x2 <= x1 or y2 <= y1:
        return
    shifted = np.array([[1, 0, -x1], [0, 1, -y1], [0, 0, 1]], np.float64) @ matrix
    size = (int(x2 - x1), int(y2 - y1))
    warped = cv2.warpPerspective(plate, shifted, size, flags=cv2.INTER_LINEAR).astype(np.float32)
    weight = cv2.warpPerspective(alpha, shifted, size, flags=cv2.INTER_LINEAR)[..., None]
    region = scene[y1:y2, x1:x2]
    region *= 1.0 - weight
    region += weight * warped


# ---------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Placement:
    background: Image
    source: str  # its name
    centre: tuple[float, float]  # where the plate's centre goes
    width_440: float  # a 440 mm plate's width there, px (other sizes scale with their width)
    roll: float = 0.0  # the car's own tilt, degrees


def _placement(root: Path, source: Source, rng: np.random.Generator) -> Placement:
    """A background for `source` and where on it the plate goes."""
    if source == "ccpd":
        index = int(rng.integers(len(_ccpd_rows(root))))
        photo, (x1, y1, x2, y2) = ccpd_background(root, index)
        side = photo.shape[1]  # a square cut, as wide as the photo
        cy = (y1 + y2) / 2
        top = int(np.clip(cy - rng.uniform(0.4, 0.7) * side, 0, photo.shape[0] - side))
        jitter = rng.uniform(-0.05, 0.05, 2) * (x2 - x1)
        centre = ((x1 + x2) / 2 + jitter[0], cy - top + jitter[1])
        width = (x2 - x1) * rng.uniform(0.9, 1.12)
        return Placement(photo[top : top + side].copy(), _ccpd_rows(root)[index]["file"], centre, width)
    anchor = ANCHORS[int(rng.integers(len(ANCHORS)))]
    frame = video_frame(root, anchor.video, anchor.frame)
    name = f"{anchor.video}#{anchor.frame}"
    fh, fw = frame.shape[:2]
    out_w, out_h = SCENE_SIZE
    if source == "video_far":
        scale = out_w / fw
        centre = (anchor.centre[0] * scale, anchor.centre[1] * out_h / fh)
        image = cv2.resize(frame, SCENE_SIZE, interpolation=cv2.INTER_CUBIC)
        return Placement(image, name, centre, rng.uniform(*FAR_PX), anchor.roll)
    # video_near: cut around the car so that its plate comes out NEAR_VIDEO_PX wide
    plate_px = rng.uniform(*NEAR_VIDEO_PX)
    natural = anchor.width * CCPD_PLATE_MM / US_PLATE_MM  # a 440 mm plate's width in the frame
    cut_w = min(fw, out_w * natural / plate_px)
    cut_h = cut_w * out_h / out_w
    cx = np.clip(anchor.centre[0] + rng.uniform(-0.25, 0.25) * cut_w, cut_w / 2, fw - cut_w / 2)
    cy = np.clip(anchor.centre[1] + rng.uniform(-0.2, 0.2) * cut_h, cut_h / 2, fh - cut_h / 2)
    x0, y0 = cx - cut_w / 2, cy - cut_h / 2
    scale = out_w / cut_w
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float64)
    image = cv2.warpAffine(frame, matrix, SCENE_SIZE, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    centre = ((anchor.centre[0] - x0) * scale, (anchor.centre[1] - y0) * scale)
    return Placement(image, name, centre, natural * scale, anchor.roll)


def _holder(plate: Plate, rng: np.random.Generator, px_per_mm: float) -> tuple[Image, npt.NDArray[np.float32], int]:
    """Half the plates sit in a dark plastic holder 4-9 mm wide; returns the image, its alpha, the margin."""
    if rng.random() < 0.5:
        return plate.image, plate.alpha, 0
    margin = max(1, round(rng.uniform(4, 9) * px_per_mm))
    shade = int(rng.integers(15, 60))
    image = cv2.copyMakeBorder(plate.image, margin, margin, margin, margin, cv2.BORDER_CONSTANT,
                               value=(shade, shade, shade))  # fmt: skip
    alpha = np.ones(image.shape[:2], np.float32)
    return image, alpha, margin


def make_scene(kind: str, index: int, seed: int = 0, root: Path | None = None) -> Scene:
    """Scene `index` of plate type `kind`: the same arguments give the same scene on every run."""
    root = root or data_root()
    rng = np.random.default_rng([seed, type_seed(kind), index])
    source = SOURCES[index % len(SOURCES)]
    place = _placement(root, source, rng)
    plate = render(kind, rng)
    w_mm = plate.size_mm[0]
    # Plates of a CCPD or near scene keep their physical size next to the 440 mm plate they replace;
    # a far plate is FAR_PX wide whatever its type, the distance the finder has to cope with.
    width_px = place.width_440 * (w_mm / CCPD_PLATE_MM if source != "video_far" else 1.0)
    px_per_mm = width_px / w_mm
    far = source == "video_far"
    yaw = rng.uniform(-20, 20) if far else rng.uniform(-30, 30)
    pitch = rng.uniform(-15, 15) if far else rng.uniform(-20, 20)
    roll = (rng.uniform(-6, 6) if far else rng.uniform(-10, 10)) + place.roll
    corners = (projected_corners(plate.size_mm, yaw, pitch, roll) * px_per_mm + place.centre).astype(np.float32)

    effects: list[str] = []
    # The plate, drawn at about its final size (warping does not average away detail it shrinks).
    holder_image, holder_alpha, margin = _holder(plate, rng, PX_PER_MM)
    shrink = min(1.0, 1.5 * width_px / plate.image.shape[1])
    if shrink < 1.0:
        holder_image = cv2.resize(holder_image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        holder_alpha = cv2.resize(holder_alpha, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    tone = _wear(holder_image.astype(np.float32), rng, effects)
    # Exposure: night (low gain; the retro-reflective plate under the camera's light stays brighter than
    # the scene), a dim day (a bright sky sets the exposure, a shaded plate comes out grey) or too bright.
    exposure = rng.random()
    night = exposure < 0.25
    gain = rng.uniform(0.2, 0.45) if night else rng.uniform(0.55, 0.85) if exposure < 0.45 else 1.0
    gain = rng.uniform(1.15, 1.45) if exposure > 0.9 else gain
    scene = place.background.astype(np.float32) * gain
    if night:
        effects.append("night")
        tone *= min(1.0, gain * rng.uniform(2.2, 3.2))
    elif gain != 1.0:
        effects.append("dim" if gain < 1.0 else "overexposed")
        tone *= gain
    ph, pw = plate.image.shape[:2]
    src = (np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32) + margin) * shrink
    _paste(scene, np.clip(tone, 0, 255).astype(np.uint8), holder_alpha, src, corners)
    image = _camera(scene, rng, far, night, effects)
    return Scene(image, kind, plate.text, plate.colour, plate.rows, corners, place.source, source, tuple(effects))


def _wear(tone: npt.NDArray[np.float32], rng: np.random.Generator, effects: list[str]) -> npt.NDArray[np.float32]:
    """Age and dirt (a gain, blotches), a shadow across the plate, a glint of sunlight."""
    height, width = tone.shape[:2]
    tone *= rng.uniform(0.65, 1.05)
    if rng.random() < 0.3:
        effects.append("dirt")
        blotches = cv2.resize(rng.random((6, 16)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        grime = np.clip((blotches - 0.45) * 2.0, 0.0, 1.0) * rng.uniform(0.3, 0.6)
        mud = np.array([40, 60, 80], np.float32)  # brownish, BGR
        tone = tone * (1.0 - grime[..., None]) + mud * grime[..., None]
    if rng.random() < 0.3:
        effects.append("shadow")
        ramp = np.linspace(rng.uniform(0.55, 0.8), 1.0, width, dtype=np.float32)
        tone *= (ramp if rng.random() < 0.5 else ramp[::-1])[None, :, None]
    if rng.random() < 0.15:
        effects.append("glare")
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.2, 0.8) * height
        spread = rng.uniform(0.15, 0.35) * width
        tone += rng.uniform(60, 140) * np.exp(-((xs - cx) ** 2 + ((ys - cy) * 2) ** 2) / (2 * spread**2))[..., None]
    return tone


def _camera(scene: npt.NDArray[np.float32], rng: np.random.Generator, far: bool, night: bool,
            effects: list[str]) -> Image:  # fmt: skip
    """What the camera adds: white balance, motion and defocus blur, sensor noise, JPEG."""
    if rng.random() < 0.3:
        effects.append("white_balance")
        scene = scene * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    if rng.random() < 0.3:
        effects.append("motion_blur")
        length = int(rng.integers(3, 6 if far else 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(-20, 20), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        scene = cv2.filter2D(scene, -1, kernel / kernel.sum())
    if rng.random() < 0.3:
        effects.append("defocus")
        scene = cv2.GaussianBlur(scene, (0, 0), rng.uniform(0.6, 1.2) if far else rng.uniform(0.8, 1.8))
    sigma = rng.uniform(4, 10) if night else 1.5
    scene += rng.normal(0.0, sigma, scene.shape).astype(np.float32)
    quality = int(rng.integers(40, 91))
    effects.append(f"jpeg{quality}")
    ok, encoded = cv2.imencode(".jpg", np.clip(scene, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def scenes(
    per_type: int, seed: int = 0, kinds: tuple[str, ...] | None = None, root: Path | None = None
) -> Iterator[Scene]:
    """`per_type` scenes of every plate type (or of `kinds`), type by type."""
    for kind in kinds or tuple(PLATE_TYPES):
        for index in range(per_type):
            yield make_scene(kind, index, seed, root)
