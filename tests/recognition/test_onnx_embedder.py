"""The pluggable ONNX face embedder (issue 14, item 5), with a small deterministic model the tests
build (tests/support/tiny_embedder.py): the model contract and its errors, alignment, unit-norm
embeddings sized by the model, cosine distances, the embedder's own thresholds, and enrolment and
a replay that run on it end to end."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest
import yaml

from edge.config import GateboxConfig, RecognitionConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.models import verify_models
from edge.protocol.embedding import EmbedderSpec
from edge.protocol.errors import ModelError
from edge.recognition.embedder import embedder_recipe
from edge.recognition.gallery import Gallery
from edge.recognition.onnx_embedder import DLIB5_IN_ARCFACE, OnnxFaceEmbedder, similarity_transform
from edge.store.lists import ListStore
from tests.conftest import run_cli
from tests.support import crowd
from tests.support.tiny_embedder import write_tiny_embedder

PHOTOS = ("kit_harington/kit1.jpg", "kit_harington/kit2.jpg", "joe_biden/biden1.jpg", "person_A/img2.jpg")


def onnx_config(model: Path, **fields: object) -> RecognitionConfig:
    return RecognitionConfig.model_validate({"embedder": "onnx", "onnx": {"model": model, **fields}})


def build(model: Path, **fields: object) -> OnnxFaceEmbedder:
    embedder = embedder_recipe(onnx_config(model, **fields), verify_models(GateboxConfig().models_path)).build()
    assert isinstance(embedder, OnnxFaceEmbedder)
    return embedder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny.onnx", dim=48)


@pytest.fixture(scope="module")
def photos(faces_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, its one face box) of a few real photos, found as enrolment finds them."""
    out = []
    for name in PHOTOS:
        image = cv2.imread(str(faces_dir / name))
        faces = DlibHogFaceDetector(1600, 1).detect(image)
        assert len(faces) == 1, name
        out.append((image, faces.xyxy))
    return out


def test_a_model_that_breaks_the_contract_is_refused_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.onnx"
    with pytest.raises(ModelError, match=f"{missing} does not exist"):
        build(missing)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match=f"{corrupt} is not a usable ONNX model"):
        build(corrupt)
    wrong_size = write_tiny_embedder(tmp_path / "96px.onnx", side=96)
    with pytest.raises(ModelError, match=rf"{wrong_size} must take one N x 3 x 112 x 112 input.*96, 96"):
        build(wrong_size)
    with pytest.raises(ValueError, match="embedder: onnx needs an `onnx:` section"):
        RecognitionConfig(embedder="onnx")


def test_embeddings_are_unit_length_deterministic_and_as_wide_as_the_model(tiny: Path, photos: list) -> None:
    embedder = build(tiny)
    assert embedder.spec == EmbedderSpec(f"onnx:{hashlib.sha256(tiny.read_bytes()).hexdigest()[:16]}", 48)
    assert embedder.spec.metric == "cosine"
    first = np.concatenate([embedder.embed(image, box) for image, box in photos])
    again = np.concatenate([embedder.embed(image, box) for image, box in photos])
    assert first.shape == (len(PHOTOS), 48) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, again)  # the same photo gives the same embedding
    # A model with a fixed batch of 1 gives the same embeddings, one face at a time.
    fixed = build(write_tiny_embedder(tiny.parent / "batch1.onnx", dim=48, batch=1))
    crops, boxes = zip(*(_crop(image, box) for image, box in photos), strict=True)
    assert np.allclose(fixed.embed_crops(crops, boxes), embedder.embed_crops(crops, boxes), atol=1e-5)
    # Other preprocessing is another embedder: its embeddings differ, and so does its id.
    bgr = build(tiny, channels="bgr", input_mean=0.0, input_std=255.0)
    assert bgr.spec.id == f"{embedder.spec.id};bgr;0;255" and not np.allclose(bgr.embed(*photos[0]), first[0])


def _crop(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    from edge.recognition.sampler import crop_face

    return crop_face(image, box[0])


def test_similarity_transform_recovers_a_known_one() -> None:
    angle, scale, shift = np.deg2rad(12.0), 1.7, np.array([31.0, -8.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = DLIB5_IN_ARCFACE @ rotation.T + shift
    matrix = similarity_transform(DLIB5_IN_ARCFACE, moved)
    assert np.allclose(matrix[:, :2], rotation, atol=1e-6) and np.allclose(matrix[:, 2], shift, atol=1e-4)


def test_alignment_undoes_where_how_large_and_how_tilted_the_face_is(tiny: Path, photos: list) -> None:
    """The same face turned 15 degrees, shrunk and moved in the frame gives (nearly) the same chip and
    embedding; another person's face does not."""
    embedder = build(tiny)
    image, box = photos[0]
    centre = (box[0, :2] + box[0, 2:]) / 2
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 15.0, 0.7)
    turn[:, 2] += (53, 37)
    moved = cv2.warpAffine(image, turn, (image.shape[1], image.shape[0]))
    moved_centre = turn[:, :2] @ centre + turn[:, 2]
    half = 0.7 * (box[0, 2:] - box[0, :2]) / 2
    moved_box = np.concatenate([moved_centre - half, moved_centre + half])[None].astype(np.float32)
    chip, moved_chip = embedder.chip(*_crop(image, box)), embedder.chip(*_crop(moved, moved_box))
    other_chip = embedder.chip(*_crop(*photos[2]))
    assert chip.shape == (112, 112, 3)
    assert np.abs(chip.astype(float) - moved_chip).mean() < 12 < np.abs(chip.astype(float) - other_chip).mean()
    same = float(embedder.embed(image, box)[0] @ embedder.embed(moved, moved_box)[0])
    others = [float(embedder.embed(image, box)[0] @ embedder.embed(*other)[0]) for other in photos[2:]]
    assert 1 - same < 0.05 < min(1 - c for c in others)
    # dlib's 5 points, found again on the chip (in the face box carried over by the same transform),
    # sit where the template puts them.
    crop, (x1, y1, x2, y2) = _crop(image, box)
    rgb = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
    points = [(p.x, p.y) for p in embedder.landmarks(rgb, dlib.rectangle(int(x1), int(y1), int(x2), int(y2))).parts()]
    matrix = similarity_transform(points, DLIB5_IN_ARCFACE)
    (cx1, cy1), (cx2, cy2) = np.array([[x1, y1], [x2, y2]]) @ matrix[:, :2].T + matrix[:, 2]
    found = embedder.landmarks(chip, dlib.rectangle(int(cx1), int(cy1), int(cx2), int(cy2))).parts()
    assert np.abs(np.array([(p.x, p.y) for p in found]) - DLIB5_IN_ARCFACE).max() < 4


def test_gallery_compares_by_cosine_distance_with_the_embedders_own_thresholds(tiny: Path) -> None:
    spec = EmbedderSpec("onnx:0123456789abcdef", 3)
    rows = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    gallery = Gallery(rows, ("watchlist",) * 2, ("a", "b"), embedder=spec)
    query = np.array([[3.0, 0.3, 0.0]], np.float32)  # any length: only the angle counts
    expected = 1 - 3.0 / np.hypot(3.0, 0.3)
    assert np.allclose(gallery.distances(query), [[expected, 1 - 0.3 / np.hypot(3.0, 0.3)]], atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        Gallery(np.zeros((1, 128), np.float32), ("w",), ("a",), embedder=spec)
    config = onnx_config(tiny, match_distance=0.02, strong_distance=0.01).model_copy(update={"match_distance": 1.4})
    active = config.with_embedder_thresholds()
    assert (active.match_distance, active.strong_distance) == (0.02, 0.01)  # not dlib's 1.4
    (match,) = gallery.nearest(query, active.match_distance)
    assert match is not None and match.subject_id == "a"
    assert gallery.nearest(query, 0.001) == [None]
    assert RecognitionConfig(match_distance=0.45).with_embedder_thresholds().match_distance == 0.45  # dlib


@pytest.mark.slow  # the CLI on a real clip
def test_enrol_and_replay_with_the_onnx_embedder(tmp_path: Path, crowd_clip: Path, tiny: Path) -> None:
    """`gatebox enroll`, `lists` and `replay` run on the configured ONNX model: the gallery holds its
    embeddings and id, the embedding workers build the same model, and the replay is held to the
    ONNX thresholds (not dlib's, set here so they would give the opposite outcome)."""
    photo = crowd.write_face_crop(crowd_clip, "boy", tmp_path / "boy.png")

    def config(name: str, onnx_thresholds: tuple[float, float], dlib_thresholds: tuple[float, float]) -> Path:
        recognition = {"embedder": "onnx", "subject_cooldown_s": 0, "embedding_workers": 2,
                       "match_distance": dlib_thresholds[0], "strong_distance": dlib_thresholds[1],
                       "onnx": {"model": str(tiny), "match_distance": onnx_thresholds[0],
                                "strong_distance": onnx_thresholds[1]}}  # fmt: skip
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"recognition": recognition}))
        return path

    loose = config("loose.yaml", (0.30, 0.15), (0.01, 0.005))
    tight = config("tight.yaml", (0.01, 0.005), (1.4, 1.3))
    data = tmp_path / "box"
    enrolled = run_cli(
        "--config", loose, "--data-dir", data, "enroll", "--list", "watchlist", "--subject", "boy", photo
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert (
        "watchlist\tboy\t\t1 usable embedding(s)\tlocal"
        in run_cli("--config", loose, "--data-dir", data, "lists").stdout
    )
    store = ListStore(data)
    try:
        assert store.embedders() == {"watchlist": {build(tiny).spec.id: 1}}
    finally:
        store.close()

    def replay(config: Path) -> list[dict]:
        events = tmp_path / f"{config.stem}.jsonl"
        # Frames before the enrolment frame (30): the enrolled crop itself would match at any threshold.
        result = run_cli("--config", config, "--data-dir", data, "replay", crowd_clip, "--no-publish",
                         "--end-frame", "27", "--events", events)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []

    (alert,) = replay(loose)
    x, y, _ = crowd.position("boy", alert["frame"])
    x1, y1, x2, y2 = alert["bbox"]
    assert alert["subject_id"] == "boy" and x1 < x < x2 and y1 < y < y2  # on the boy's face
    assert alert["distance"] < 0.30
    assert replay(tight) == []
