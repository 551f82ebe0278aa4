"""What the sampler hands to the embedder: big enough faces, padded crops; and how it rates a face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.config import GateboxConfig, RecognitionConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.models import verify_models
from edge.recognition.embedder import DlibFaceEmbedder
from edge.recognition.sampler import FaceQuality, FaceSampler, crop_face
from edge.tracking.iou_tracker import TrackerUpdate
from edge.types import Detections, Frame

CONFIG = RecognitionConfig(min_face_px=40)
IMAGE = np.zeros((400, 400, 3), np.uint8)


def one_face(width: float = 80.0, track: int = 1) -> TrackerUpdate:
    faces = Detections.from_boxes([[100, 100, 100 + width, 100 + width]], [1.0])
    return TrackerUpdate(faces.with_tracker_ids(np.array([track])), ())


# When tracks are looked at (floor, budget, better views, decided tracks): test_sampling_floor.py.


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
    x1, y1, x2, y2 = crop_box
    half = quality(cv2.resize(crop, None, fx=0.5, fy=0.5), (x1 / 2, y1 / 2, x2 / 2, y2 / 2))
    assert sharp > 1.5 * blurred and sharp > 1.5 * half
