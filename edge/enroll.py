"""Enrolment: one face per photo becomes an embedding stored under a subject of a list."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.config import GateboxConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.errors import InputError
from edge.models import verify_models
from edge.recognition.embedder import FaceEmbedder, embedder_recipe
from edge.store.lists import ListStore

# Enrolment photos are few and matter: detect at full resolution up to this width, upsampled
# twice for small crops, so a 60 px face cut from a video frame is still found.
ENROL_DETECT_WIDTH = 1600


def photo_embedder(config: GateboxConfig) -> FaceEmbedder:
    """The configured embedder (recognition.embedder): enrolment and the centre's lists use the box's."""
    return embedder_recipe(config.recognition, verify_models(config.models_path)).build()


def embed_photo(embedder: FaceEmbedder, photo: Path) -> np.ndarray:
    """The embedding of the one face in `photo`; InputError naming the file otherwise."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{photo}: cannot read image (missing, or not a JPEG/PNG/BMP/WebP)")
    upsample = 2 if max(image.shape[:2]) < 500 else 1
    faces = DlibHogFaceDetector(ENROL_DETECT_WIDTH, upsample).detect(image)
    if len(faces) == 0:
        raise InputError(f"{photo}: no face found; use a photo where the face is frontal and ≥ 60 px")
    if len(faces) > 1:
        raise InputError(f"{photo}: {len(faces)} faces found; crop the photo to the one person to enrol")
    return embedder.embed(image, faces.xyxy)[0]


def enroll_photos(
    config: GateboxConfig,
    data_dir: Path,
    list_name: str,
    subject_id: str,
    name: str | None,
    photos: Sequence[Path],
) -> int:
    """Validate every photo first, then store all embeddings in one transaction.

    A photo with no face or several faces is an error naming the file, and then nothing is
    written: what was enrolled before stays as it was. Returns the number of embeddings stored.
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
