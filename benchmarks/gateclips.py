"""Cross-photo gate clips, composed at run time and never committed (issue 14, item 1).

A person's head, cut out of one photo of ../shared/data/faces/identities with a soft elliptical
mask, is pasted frame by frame onto real video (a street, a campus) the way a gate camera would
see them: standing still, walking toward the camera or passing sideways, at 30-100 px, with sensor
noise, motion and defocus blur, exposure drift, JPEG blocks and the video codec on top. The clip's
ground truth (where every face is, frame by frame) comes out of the same code that draws it.

Everything is seeded: the same spec gives the same frames on every run.

    from benchmarks.gateclips import ClipSpec, Actor, compose
    clip = compose(ClipSpec("demo", (Actor("id03", "img10.jpg", "subject"),), "toward", (30, 100), ()), out_dir)
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.scoring import TruthRow

Motion = Literal["standing", "toward", "sideways"]
Degradation = Literal["noise", "motion_blur", "defocus", "exposure", "jpeg"]
Role = Literal["subject", "stranger"]
Box = tuple[float, float, float, float]
Image = npt.NDArray[np.uint8]

MOTIONS: tuple[Motion, ...] = ("standing", "toward", "sideways")
DEGRADATIONS: tuple[Degradation, ...] = ("noise", "motion_blur", "defocus", "exposure", "jpeg")
BACKGROUNDS = ("one_by_one_from_behind.mp4", "campus_pedestrians.avi")
FRAME_SIZE = (640, 360)  # the held-out footage's size, and a common gate sub-stream
FPS = 25.0
LEAD_IN = 12  # frames of scene alone first: the motion gate learns its background
LEAD_OUT = 10
BASE_NOISE_SIGMA = 2.0  # every clip: a camera is never noiseless
HEAVY_NOISE_SIGMA = 7.0  # "noise": a small sensor at dusk
# "motion_blur": streak length per motion. Passing at ~160 px/s with a 1/25-1/40 s shutter (dusk) streaks
# 4-6 px along the walk; walking toward the camera moves the face little (the gait bobs it); a standing
# person blurs only with camera shake (any direction).
MOTION_BLUR_PX = {"sideways": 6, "toward": 4, "standing": 3}
DEFOCUS_RADIUS = 1.8  # "defocus": a lens focused on the gate, not on the face
JPEG_QUALITY = 35  # "jpeg": a cheap camera's stream, before the codec
CUTOUT_FACE_PX = 200.0  # cut-outs are kept at most this face width: clips show <= 100 px
IN_VIEW_FRACTION = 0.2  # of the face's width inside the frame: from here on the face counts as visible
PHOTO_DETECT_WIDTH = 1600  # as edge.enroll finds faces in enrolment photos
# Seconds a walk-past takes (sideways), a walk up to the camera (toward), a stand (standing).
WALK_IN_S, STAND_S, TOWARD_S, SIDEWAYS_S = 0.6, 4.0, 5.0, 4.0


@dataclass(frozen=True)
class Actor:
    """One person in a clip: which identity, filmed from which of their photos."""

    identity: str  # id01..id09 in identities.csv
    photo: str  # file name in the identities folder
    role: Role  # subject: enrolled (an alert is expected); stranger: not enrolled (no alert)


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides a clip's frames; `seed` defaults to one derived from `name`."""

    name: str
    actors: tuple[Actor, ...]
    motion: Motion
    face_px: tuple[int, int]  # face width (dlib box) at the start and the end of the motion
    degradations: tuple[Degradation, ...]
    background: str = BACKGROUNDS[0]
    seed: int | None = None

    def rng_seed(self) -> int:
        return self.seed if self.seed is not None else zlib.crc32(self.name.encode()) & 0x7FFFFFFF  # a C int for OpenCV


@dataclass
class ComposedClip:
    spec: ClipSpec
    path: Path
    fps: float
    frame_count: int
    codec: str
    # actor index -> face box (x1, y1, x2, y2) in each frame, None where that face is not in view
    boxes: list[list[Box | None]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def visible_frames(self, actor: int) -> tuple[int, int] | None:
        frames = [i for i, box in enumerate(self.boxes[actor]) if box is not None]
        return (frames[0], frames[-1]) if frames else None

    def truth(self) -> list[TruthRow]:
        """One row per subject: the frames in which their face is in view (strangers have none)."""
        rows = []
        for index, actor in enumerate(self.spec.actors):
            seen = self.visible_frames(index)
            if actor.role == "subject" and seen:
                rows.append(TruthRow(actor.identity, *seen))
        return rows

    def face_widths(self, actor: int) -> list[float]:
        return [b[2] - b[0] for b in self.boxes[actor] if b is not None]

    def actor_at(self, frame: int, box: Sequence[float]) -> int | None:
        """The actor whose face `box` (an alert's) covers in `frame`; None: a face of the scene itself."""
        best, best_iou = None, 0.3
        for index, boxes in enumerate(self.boxes):
            truth = boxes[frame] if 0 <= frame < len(boxes) else None
            if truth is not None and (overlap := iou(truth, box)) > best_iou:
                best, best_iou = index, overlap
        return best


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def identities(folder: Path) -> dict[str, list[str]]:
    """identity -> its photo file names, in identities.csv order."""
    people: dict[str, list[str]] = {}
    with (folder / "identities.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            people.setdefault(row["identity"], []).append(row["file"])
    return people


@dataclass(frozen=True)
class HeadCutout:
    """A photo's head region and, inside it, the face box (dlib's convention, as enrolment finds it)."""

    image: Image
    face: Box


@cache
def _photo_detector(upsample: int) -> DlibHogFaceDetector:
    return DlibHogFaceDetector(PHOTO_DETECT_WIDTH, upsample)


@cache
def photo_face(photo: Path) -> tuple[Image, Box]:
    """A photo and its (largest) face box, found as enrolment finds it (edge.enroll: HOG, dlib's box)."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(photo)
    faces = _photo_detector(2 if max(image.shape[:2]) < 500 else 1).detect(image)
    if len(faces) == 0:
        raise ValueError(f"{photo}: no face found")
    x1, y1, x2, y2 = faces.xyxy[int(np.argmax(faces.width))].tolist()
    return image, (x1, y1, x2, y2)


@cache
def head_cutout(photo: Path) -> HeadCutout:
    image, (x1, y1, x2, y2) = photo_face(photo)
    w, h = x2 - x1, y2 - y1
    # Hair above, some neck below: the detector and the landmarks see a head, not a cut-out face.
    cx1, cy1 = int(max(0, x1 - 0.45 * w)), int(max(0, y1 - 0.6 * h))
    cx2, cy2 = int(min(image.shape[1], x2 + 0.45 * w)), int(min(image.shape[0], y2 + 0.4 * h))
    head = image[cy1:cy2, cx1:cx2]
    scale = min(1.0, CUTOUT_FACE_PX / w)
    head = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else head.copy()
    return HeadCutout(head, tuple(v * scale for v in (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)))  # type: ignore[arg-type]


# --- where each face is, frame by frame ----------------------------------------------------------

Place = tuple[float, float, float]  # face centre x, y and face width, in frame pixels


def _perspective(start: float, end: float, t: float) -> float:
    """Face width when walking at constant speed toward the camera: width ∝ 1 / distance."""
    return 1.0 / (1.0 / start + t * (1.0 / end - 1.0 / start))


def trajectory(spec: ClipSpec, lane: int, rng: np.random.Generator) -> list[Place]:
    """Places of one actor over its visible frames. Lanes keep people side by side, never overlapping."""
    width, height = FRAME_SIZE
    lanes = len(spec.actors)
    start_px, end_px = spec.face_px
    gait = rng.uniform(1.6, 2.2)  # steps per second: a small bob and sway
    phase = rng.uniform(0, 2 * math.pi)
    places: list[Place] = []
    if spec.motion == "standing":
        x = width * (0.5 if lanes == 1 else (0.32 + 0.36 * lane)) + rng.uniform(-0.06, 0.06) * width
        y = height * rng.uniform(0.3, 0.42)
        from_left = x < width / 2
        walk_in, stand = round(WALK_IN_S * FPS), round(STAND_S * FPS)
        for i in range(walk_in + stand):
            if i < walk_in:  # steps in from the nearer edge, slowing down
                t = 1 - (1 - i / walk_in) ** 2
                edge = -start_px if from_left else width + start_px
                places.append((edge + (x - edge) * t, y, float(start_px)))
            else:
                s = (i - walk_in) / FPS
                sway = math.sin(2 * math.pi * 0.3 * s + phase)
                places.append((x + 0.05 * start_px * sway, y + 0.02 * start_px * sway, start_px * (1 + 0.02 * sway)))
    elif spec.motion == "toward":
        n = round(TOWARD_S * FPS)
        x0 = width * (0.5 if lanes == 1 else (0.36 + 0.28 * lane)) + rng.uniform(-0.05, 0.05) * width
        drift = rng.uniform(-0.08, 0.08) * width
        for i in range(n):
            t = i / (n - 1)
            size = _perspective(start_px, end_px, t)
            bob = math.sin(2 * math.pi * gait * i / FPS + phase)
            x = x0 + drift * t + (0.15 * (lane - 0.5) * width * t if lanes > 1 else 0)  # side by side spread
            places.append((x + 0.04 * size * bob, height * (0.3 + 0.2 * t) + 0.05 * size * abs(bob), size))
    else:  # sideways: across the whole frame, one behind the other
        n = round(SIDEWAYS_S * FPS)
        left_to_right = rng.random() < 0.5
        y = height * rng.uniform(0.32, 0.45) + lane * 0.1 * height
        biggest = max(start_px, end_px)
        speed = (width + 2 * biggest) / n  # px per frame
        behind = lane * 2.5 * biggest  # the second person follows a couple of face widths back
        steps = n + math.ceil(behind / speed)
        for i in range(steps):
            size = start_px + (end_px - start_px) * i / (steps - 1)
            travel = -biggest - behind + speed * i
            bob = math.sin(2 * math.pi * gait * i / FPS + phase)
            places.append((travel if left_to_right else width - travel, y + 0.05 * size * abs(bob), size))
    return places


# --- image operations ----------------------------------------------------------------------------


def _line_kernel(length: int, angle: float) -> npt.NDArray[np.float32]:
    kernel = np.zeros((length, length), np.float32)
    c, d = (length - 1) / 2, (length - 1) / 2
    dx, dy = math.cos(angle) * d, math.sin(angle) * d
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return kernel / kernel.sum()


def _disk_kernel(radius: float, supersample: int = 8) -> npt.NDArray[np.float32]:
    """A lens's blur disk, with its edge pixels weighted by how much of them it covers."""
    size = 2 * math.ceil(radius) + 1
    fine = (np.arange(size * supersample) + 0.5) / supersample - size / 2
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    kernel = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return kernel / kernel.sum()


def _paste(frame: Image, patch: npt.NDArray[np.float32], mask: npt.NDArray[np.float32], left: int, top: int) -> None:
    """Alpha-blend `patch` into `frame` at (left, top), clipped to the frame."""
    h, w = mask.shape
    fx1, fy1 = max(0, left), max(0, top)
    fx2, fy2 = min(frame.shape[1], left + w), min(frame.shape[0], top + h)
    if fx1 >= fx2 or fy1 >= fy2:
        return
    px1, py1 = fx1 - left, fy1 - top
    alpha = mask[py1 : py1 + fy2 - fy1, px1 : px1 + fx2 - fx1, None]
    region = frame[fy1:fy2, fx1:fx2].astype(np.float32)
    blended = alpha * patch[py1 : py1 + fy2 - fy1, px1 : px1 + fx2 - fx1] + (1 - alpha) * region
    frame[fy1:fy2, fx1:fx2] = np.clip(blended, 0, 255).astype(np.uint8)


def _render_head(frame: Image, cutout: HeadCutout, place: Place, blur: npt.NDArray[np.float32] | None) -> Box | None:
    """Draws the head so its face sits at `place`; returns the face box while it is in view."""
    cx, cy, size = place
    fx1, fy1, fx2, fy2 = cutout.face
    scale = size / (fx2 - fx1)
    h, w = cutout.image.shape[:2]
    sw, sh = max(2, round(w * scale)), max(2, round(h * scale))
    left, top = round(cx - (fx1 + fx2) / 2 * scale), round(cy - (fy1 + fy2) / 2 * scale)
    patch = cv2.resize(cutout.image, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    mask = np.zeros((sh, sw), np.float32)
    cv2.ellipse(mask, (sw // 2, sh // 2), (max(1, sw // 2 - 1), max(1, sh // 2 - 1)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, 0.07 * sw))
    if blur is not None:  # the head moves, the scene does not: only the head (and its edge) streaks
        pad = blur.shape[0]
        patch = cv2.copyMakeBorder(patch, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        mask = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        patch, mask = cv2.filter2D(patch, -1, blur), cv2.filter2D(mask, -1, blur)
        left, top = left - pad, top - pad
    _paste(frame, patch, mask, left, top)
    x1, y1 = cx - (fx2 - fx1) / 2 * scale, cy - (fy2 - fy1) / 2 * scale
    box = (x1, y1, x1 + size, y1 + (fy2 - fy1) * scale)
    inside = min(box[2], frame.shape[1]) - max(box[0], 0.0)
    # In view from a fifth of the face on: no detector finds less, so no alert can come before.
    return box if inside >= IN_VIEW_FRACTION * size and 0 <= cy < frame.shape[0] else None


def _exposure_lut(t: float, phase: float) -> npt.NDArray[np.uint8]:
    """Auto-exposure hunting as clouds pass: gain 0.5-1.3 and a gamma swing, slowly over the clip."""
    gain = 0.9 + 0.4 * math.sin(2 * math.pi * (0.8 * t) + phase)
    gamma = 1.0 + 0.35 * (0.5 + 0.5 * math.sin(2 * math.pi * 0.5 * t + phase + 1.0))
    levels = np.arange(256, dtype=np.float32) / 255.0
    return np.clip(255.0 * gain * levels**gamma, 0, 255).astype(np.uint8)


class _Background:
    """Real video behind the people, played at its own pace (frames repeat when it is slower)."""

    def __init__(self, video: Path, start: int, frames_needed: int) -> None:
        capture = cv2.VideoCapture(str(video))
        self.fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = math.ceil(frames_needed * self.fps / FPS) + 1
        capture.set(cv2.CAP_PROP_POS_FRAMES, max(0, min(start, total - wanted - 1)))
        self._frames: list[Image] = []
        while len(self._frames) < wanted:
            ok, image = capture.read()
            if not ok:
                break
            self._frames.append(self._fit(image))
        capture.release()
        if not self._frames:
            raise ValueError(f"cannot read background video {video}")

    @staticmethod
    def _fit(image: Image) -> Image:
        """Centre-crop to 16:9 and scale to FRAME_SIZE."""
        h, w = image.shape[:2]
        target_h = round(w * FRAME_SIZE[1] / FRAME_SIZE[0])
        if target_h < h:
            top = (h - target_h) // 2
            image = image[top : top + target_h]
        return cv2.resize(image, FRAME_SIZE, interpolation=cv2.INTER_AREA)

    def frame(self, index: int) -> Image:
        return self._frames[min(len(self._frames) - 1, int(index * self.fps / FPS))].copy()


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """FFmpeg reports a failed encoder probe straight to file descriptor 2; hide it."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@cache
def video_codec() -> str:
    """H.264 (avc1) when this OpenCV can write it, else MPEG-4 part 2 (pip's OpenCV has no H.264 encoder)."""
    with tempfile.TemporaryDirectory() as tmp, _quiet_stderr():
        for fourcc in ("avc1", "mp4v"):
            writer = cv2.VideoWriter(str(Path(tmp) / "probe.mp4"), cv2.VideoWriter_fourcc(*fourcc), FPS, FRAME_SIZE)
            opened = writer.isOpened()
            writer.release()
            if opened:
                return fourcc
    raise RuntimeError("OpenCV can write neither H.264 nor MPEG-4 video")


def compose(spec: ClipSpec, faces_dir: Path, videos_dir: Path, out_dir: Path) -> ComposedClip:
    """Writes `<out_dir>/<spec.name>.mp4` and returns where every face is in it."""
    rng = np.random.default_rng(spec.rng_seed())
    cutouts = [head_cutout(faces_dir / actor.photo) for actor in spec.actors]
    # Each actor after the first starts a little later, so people do not move in lockstep.
    delays = [0] + [int(rng.integers(3, 12)) for _ in spec.actors[1:]]
    paths = [trajectory(spec, lane, rng) for lane in range(len(spec.actors))]
    frame_count = LEAD_IN + max(d + len(p) for d, p in zip(delays, paths, strict=True)) + LEAD_OUT
    background = _Background(videos_dir / spec.background, int(rng.integers(0, 600)), frame_count)
    direction = [0.0 if spec.motion == "sideways" else math.pi / 2 for _ in spec.actors]
    if spec.motion == "standing":
        direction = [float(rng.uniform(0, math.pi)) for _ in spec.actors]
    blur_len = MOTION_BLUR_PX[spec.motion]
    blurs = [_line_kernel(blur_len, a) if "motion_blur" in spec.degradations else None for a in direction]
    defocus = _disk_kernel(DEFOCUS_RADIUS) if "defocus" in spec.degradations else None
    noise_sigma = HEAVY_NOISE_SIGMA if "noise" in spec.degradations else BASE_NOISE_SIGMA
    exposure_phase = float(rng.uniform(0, 2 * math.pi))

    cv2.setRNGSeed(spec.rng_seed())  # the sensor noise (cv2.randn: 10x numpy's speed) is seeded too
    noise = np.empty((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{spec.name}.mp4"
    codec = video_codec()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), FPS, FRAME_SIZE)
    boxes: list[list[Box | None]] = [[] for _ in spec.actors]
    try:
        for index in range(frame_count):
            frame = background.frame(index)
            for actor, (cutout, places, delay, blur) in enumerate(zip(cutouts, paths, delays, blurs, strict=True)):
                step = index - LEAD_IN - delay
                box = _render_head(frame, cutout, places[step], blur) if 0 <= step < len(places) else None
                boxes[actor].append(box)
            if defocus is not None:
                frame = cv2.filter2D(frame, -1, defocus)
            if "exposure" in spec.degradations:
                frame = cv2.LUT(frame, _exposure_lut(index / FPS, exposure_phase))
            cv2.randn(noise, 0.0, noise_sigma)
            frame = cv2.add(frame, noise, dtype=cv2.CV_8U)  # saturating
            if "jpeg" in spec.degradations:
                _, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                frame = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
            writer.write(frame)
    finally:
        writer.release()
    return ComposedClip(spec, path, FPS, frame_count, codec, boxes)
