"""Enrolment: one face per photo becomes an embedding stored under a subject of a list.

A photo is refused, naming the file and the reason, when its face is too small, too blurred or
turned too far from the camera to make a reference worth matching against. The limits were set on
every photo in ../shared/data/faces (64 real enrolment photos of 9 people) and on stills of the
crowd clip (faces 54-112 px), with the measurements in `FaceCheck`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from edge.config import DEFAULT_MODELS_DIR, GateboxConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.models import verify_models
from edge.protocol.errors import InputError
from edge.recognition.embedder import EmbedderChoice, FaceEmbedder, embedder_recipe
from edge.recognition.sampler import face_yaw
from edge.store.lists import ListStore

# Enrolment photos are few and matter: detect at full resolution up to this width, upsampled
# twice for small crops, so a 60 px face cut from a video frame is still found.
ENROL_DETECT_WIDTH = 1600


# Face box width (dlib's convention). As gate-video probes of people photographed on other days,
# faces of 40/60/90 px sat at median distances 0.53/0.48/0.42 from their enrolment photos: below
# 60 px a reference is as poor as the video it is matched against. The real photos' faces are
# >= 90 px; the crowd clip's stills from frame 30 (the tests' enrolments) 65-78 px.
MIN_FACE_PX = 60
# Laplacian variance of the aligned face at 64x64. Real photos: >= 607; crowd-clip stills (soft
# video, 54-112 px faces): 64-197. The same photos blurred by a Gaussian of 1/2/3/4 px (on dlib's
# 150 px face chip): <= 768/199/61/34, their embeddings moved 0.13-0.21/0.27-0.33/0.38-0.46/more.
# 50 takes every real photo and still, and refuses blur that moves an embedding ~0.4 on its own.
MIN_SHARPNESS = 50.0
# `face_yaw`: real photos <= 0.22; the most turned (three-quarter) faces of the crowd clip
# 0.30-0.36. 0.5 (~40 degrees) refuses faces past three-quarter towards profile.
MAX_YAW = 0.5
RECOMMENDED_PHOTOS = 3  # per subject, from different days and angles: one photo is one lighting, one pose


@dataclass(frozen=True)
class FaceCheck:
    """What makes an enrolment photo usable, measured on the face dlib will embed."""

    width: float  # face box, px
    sharpness: float  # Laplacian variance of the aligned face at 64x64
    yaw: float  # `face_yaw`: 0 frontal

    @classmethod
    def of(
        cls, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32], landmarks: dlib.shape_predictor
    ) -> FaceCheck:
        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        x1, y1, x2, y2 = (int(v) for v in xyxy)
        shape = landmarks(rgb, dlib.rectangle(x1, y1, x2, y2))
        # The chip the embedder sees (150 px, dlib's padding), brought to one small scale so a small
        # sharp face and a large blurred one are told apart.
        chip = cv2.cvtColor(dlib.get_face_chip(rgb, shape, size=150, padding=0.25), cv2.COLOR_RGB2GRAY)
        small = cv2.resize(chip, (64, 64), interpolation=cv2.INTER_AREA)
        sharpness = float(cv2.Laplacian(small, cv2.CV_64F).var())
        return cls(float(xyxy[2] - xyxy[0]), sharpness, face_yaw(shape.parts()))

    def problem(self) -> str | None:
        """Why this face makes a poor reference, or None."""
        if self.width < MIN_FACE_PX:
            return f"face too small ({self.width:.0f} px wide, at least {MIN_FACE_PX} px needed); use a closer photo"
        if self.sharpness < MIN_SHARPNESS:
            return f"face too blurred (sharpness {self.sharpness:.0f}, at least {MIN_SHARPNESS:.0f}); use a sharp photo"
        if self.yaw > MAX_YAW:
            return f"face turned too far from the camera (yaw {self.yaw:.2f}, at most {MAX_YAW}); use a frontal photo"
        return None


def photo_embedder(config: GateboxConfig) -> FaceEmbedder:
    """The configured embedder (recognition.embedder), as enrolment uses it."""
    return embedder_for(config.recognition, config.models_path)


def embedder_for(choice: EmbedderChoice, models_dir: Path | None) -> FaceEmbedder:
    """The embedder `choice` names (the box's `recognition` section, or the centre's, which builds
    lists with the boxes' embedder), from the verified model files in `models_dir` (default: the
    installation's models/)."""
    return embedder_recipe(choice, verify_models(models_dir or DEFAULT_MODELS_DIR)).build()


def embed_photo(embedder: FaceEmbedder, photo: Path) -> np.ndarray:
    """The embedding of the one usable face in `photo`; InputError naming the file and the reason otherwise."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{photo}: cannot read image (missing, or not a JPEG/PNG/BMP/WebP)")
    upsample = 2 if max(image.shape[:2]) < 500 else 1
    faces = DlibHogFaceDetector(ENROL_DETECT_WIDTH, upsample).detect(image)
    if len(faces) == 0:
        raise InputError(f"{photo}: no face found; use a photo where the face is frontal and ≥ {MIN_FACE_PX} px")
    if len(faces) > 1:
        raise InputError(f"{photo}: {len(faces)} faces found; crop the photo to the one person to enrol")
    if problem := FaceCheck.of(image, faces.xyxy[0], embedder.landmarks).problem():
        raise InputError(f"{photo}: {problem}")
    embedding: npt.NDArray[np.float32] = embedder.embed(image, faces.xyxy)[0]
    return embedding


def enroll_photos(
    config: GateboxConfig,
    data_dir: Path,
    list_name: str,
    subject_id: str,
    name: str | None,
    photos: Sequence[Path],
) -> int:
    """Validate every photo first, then store all embeddings in one transaction.

    A photo with no face, several faces, or a face too small, blurred or turned (`FaceCheck`) is
    an error naming the file and the reason, and then nothing is written: what was enrolled before
    stays as it was. Returns the number of embeddings stored.
    """
    if list_name not in config.lists:
        raise InputError(f"unknown list '{list_name}'; configured lists: {', '.join(config.lists)}")
    embedder = photo_embedder(config)
    embeddings = [embed_photo(embedder, photo) for photo in photos]
    store = ListStore(data_dir)
    try:
        store.enroll(list_name, subject_id, name, np.stack(embeddings), [str(p) for p in photos], embedder.spec)
    finally:
        store.close()
    return len(embeddings)
