"""Which tracked faces get an embedding: first looks, clearly better views, promising tracks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import GateboxConfig, RecognitionConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.models import verify_models
from edge.recognition.embedder import DlibFaceEmbedder
from edge.recognition.sampler import FaceQuality, FaceSampler, crop_face
from edge.tracking.iou_tracker import TrackerUpdate
from edge.types import FaceDetections, Frame

CONFIG = RecognitionConfig(
    min_matching_frames=3,
    embed_every_n_frames=1,
    max_embeddings_per_track=6,
    min_quality_gain=0.25,
    min_face_px=40,
)
IMAGE = np.zeros((400, 400, 3), np.uint8)


def one_face(width: float = 80.0, track: int = 1) -> TrackerUpdate:
    faces = FaceDetections.from_boxes([[100, 100, 100 + width, 100 + width]], [1.0])
    return TrackerUpdate(faces.with_tracker_ids(np.array([track])), ())


def run(qualities: list[float], promising_from: int | None = None, decided_from: int | None = None) -> list[int]:
    """Frames (indices into `qualities`) at which the sampler asks for an embedding."""
    sampler = FaceSampler(lambda crop, box: qualities[run.frame], CONFIG)
    chosen = []
    for run.frame in range(len(qualities)):
        promising = {1} if promising_from is not None and run.frame >= promising_from else set()
        decided = {1} if decided_from is not None and run.frame >= decided_from else set()
        frame = Frame("gate", run.frame, float(run.frame), IMAGE)
        chosen += [s.frame_index for s in sampler.select(frame, one_face(), decided, promising)]
    return chosen


@pytest.mark.parametrize(
    ("qualities", "promising_from", "decided_from", "expected"),
    [
        ([10] * 10, None, None, [0, 1, 2]),  # a stranger of steady quality: three looks, then no more
        ([10, 10, 10, 11, 12, 12, 20, 20, 26], None, None, [0, 1, 2, 6, 8]),  # clearly better views only
        ([10] * 10, 4, None, [0, 1, 2, 4, 5, 6]),  # promising: keep looking, up to the cap of 6
        ([10] * 10, None, 1, [0]),  # decided: never again
    ],
)
def test_sampling_policy(
    qualities: list[float], promising_from: int | None, decided_from: int | None, expected: list[int]
) -> None:
    assert run(qualities, promising_from, decided_from) == expected


def test_small_faces_are_not_embedded() -> None:
    sampler = FaceSampler(lambda crop, box: 1.0, CONFIG)
    assert sampler.select(Frame("gate", 0, 0.0, IMAGE), one_face(width=30), set(), set()) == []


def test_sample_carries_a_padded_crop_and_the_box_inside_it() -> None:
    sampler = FaceSampler(lambda crop, box: 1.0, CONFIG)
    (sample,) = sampler.select(Frame("gate", 7, 7.0, IMAGE), one_face(width=80), set(), set())
    assert sample.crop.shape == (160, 160, 3) and sample.crop_xyxy == (40, 40, 120, 120)
    assert (sample.frame_index, sample.track_id, sample.xyxy) == (7, 1, (100, 100, 180, 180))


def test_face_quality_prefers_sharp_large_faces(faces_dir: Path) -> None:
    paths = verify_models(GateboxConfig().models_path)
    quality = FaceQuality(DlibFaceEmbedder(paths["face_landmarks_5"], paths["face_embedding"]).landmarks)
    image = cv2.imread(str(faces_dir / "person_A" / "img2.jpg"))
    (box,) = DlibHogFaceDetector(1600, 1).detect(image).xyxy
    crop, crop_box = crop_face(image, box)
    sharp = quality(crop, crop_box)
    blurred = quality(cv2.GaussianBlur(crop, (0, 0), 6), crop_box)
    half = quality(cv2.resize(crop, None, fx=0.5, fy=0.5), tuple(v / 2 for v in crop_box))
    assert sharp > 1.5 * blurred and sharp > 1.5 * half
