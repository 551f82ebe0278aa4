"""Bad inputs get a clear error naming the culprit, a non-zero exit and no traceback, and nothing
already enrolled is lost (issue 2, test 5)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.conftest import run_cli
from tests.support.crowd import read_frame

pytestmark = pytest.mark.slow  # every test runs the CLI


@pytest.fixture
def no_face_photo(tmp_path: Path, shared_data: Path) -> Path:
    """A real photo with no face in it: a frame of the top-down parking lot clip."""
    path = tmp_path / "parking.png"
    cv2.imwrite(str(path), read_frame(shared_data / "video" / "parking_lot_cars.mp4", 10))
    return path


def not_media(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text("this is not media\n")
    return path


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ("box:\n  site: s1\n  colour: red\n", "box.colour: unknown field"),
        (
            "recognition:\n  match_distance: -1\n",
            "recognition.match_distance: Input should be greater than 0",
        ),
        ("cameras:\n  - url: rtsp://x\n", "cameras.0.name: Field required"),
        ("box: [1, 2\n", "is not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, config_text: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)
    result = run_cli("--config", config, "lists", timeout=60)
    assert result.returncode == 2
    assert str(config) in result.stderr and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("--config", tmp_path / "nope.yaml", "lists", timeout=60)
    assert result.returncode == 2 and "cannot read config" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("video_name", "make", "expected"),
    [
        ("missing.mp4", False, "video not found"),
        ("garbage.mp4", True, "cannot decode video"),
    ],
)
def test_unreadable_video(tmp_path: Path, video_name: str, make: bool, expected: str) -> None:
    video = not_media(tmp_path, video_name) if make else tmp_path / video_name
    result = run_cli("--data-dir", tmp_path / "box", "replay", video, "--no-publish", timeout=60)
    assert result.returncode == 2 and expected in result.stderr and str(video) in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_photos_are_refused_and_nothing_enrolled_is_lost(
    tmp_path: Path, faces_dir: Path, no_face_photo: Path
) -> None:
    data = ("--data-dir", tmp_path / "box")
    good = run_cli(*data, "enroll", "--list", "watchlist", "--subject", "kit", faces_dir / "kit_harington/kit1.jpg")
    assert good.returncode == 0, good.stderr

    cases = [
        ([faces_dir / "kit_harington/kit2.jpg", no_face_photo], f"{no_face_photo}: no face found"),
        ([faces_dir / "group/kit_harington+rose_leslie.jpg"], "2 faces found"),
        ([not_media(tmp_path, "notes.jpg")], "cannot read image"),
    ]
    for photos, expected in cases:
        result = run_cli(*data, "enroll", "--list", "watchlist", "--subject", "kit", *photos)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    unknown = run_cli(*data, "enroll", "--list", "friends", "--subject", "x", faces_dir / "kit_harington/kit2.jpg")
    assert unknown.returncode == 2 and "unknown list 'friends'" in unknown.stderr

    listed = run_cli(*data, "lists")
    assert listed.stdout.splitlines() == [
        "list\tsubject\tname\tholds\torigin",
        "watchlist\tkit\t\t1 usable embedding(s)\tlocal",
    ]


def test_missing_or_corrupt_model_refuses_to_start(tmp_path: Path, crowd_clip: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    repo_models = Path(__file__).resolve().parent.parent / "models"
    (models / "manifest.json").write_text((repo_models / "manifest.json").read_text())
    (models / "dlib").mkdir()
    config = tmp_path / "gatebox.yaml"
    config.write_text(f"models_dir: {models}\n")
    result = run_cli("--config", config, "replay", crowd_clip, "--no-publish", timeout=60)
    assert result.returncode == 2 and "is missing" in result.stderr and "models/install.py" in result.stderr

    for name in ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"):
        data = (repo_models / "dlib" / name).read_bytes()
        (models / "dlib" / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    result = run_cli("--config", config, "replay", crowd_clip, "--no-publish", timeout=60)
    assert result.returncode == 2 and "is corrupt" in result.stderr
    assert "Traceback" not in result.stderr
