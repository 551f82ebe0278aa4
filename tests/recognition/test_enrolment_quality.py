"""Enrolment that tells the truth (issue 14, item 6): a photo whose face is too small, too blurred
or turned too far is refused, naming the file and the reason; every real enrolment photo in
../shared/data/faces passes; one photo earns a hint to enrol more; `gatebox lists` counts the
usable embeddings; the centre's list build applies the same check."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from centre.config import CentreConfig
from centre.lists import build
from edge.config import GateboxConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.enroll import MAX_YAW, MIN_FACE_PX, MIN_SHARPNESS, FaceCheck, photo_embedder
from edge.protocol.errors import InputError
from tests.conftest import run_cli


def real_photos(faces_dir: Path) -> list[Path]:
    return sorted(p for p in faces_dir.glob("*/*.jpg") if p.parent.name != "group")


@pytest.mark.slow  # ~25 s: every real photo through dlib
def test_every_real_enrolment_photo_passes(faces_dir: Path) -> None:
    landmarks = photo_embedder(GateboxConfig()).landmarks
    problems = {}
    for photo in real_photos(faces_dir):
        image = cv2.imread(str(photo))
        faces = DlibHogFaceDetector(1600, 2 if max(image.shape[:2]) < 500 else 1).detect(image)
        assert len(faces) == 1, photo
        check = FaceCheck.of(image, faces.xyxy[0], landmarks)
        if check.problem():
            problems[photo.name] = check.problem()
    assert len(real_photos(faces_dir)) >= 60 and problems == {}


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (FaceCheck(width=120, sharpness=600, yaw=0.1), None),
        (FaceCheck(width=MIN_FACE_PX - 1, sharpness=600, yaw=0.1), "face too small"),
        (FaceCheck(width=120, sharpness=MIN_SHARPNESS - 1, yaw=0.1), "face too blurred"),
        (FaceCheck(width=120, sharpness=600, yaw=MAX_YAW + 0.1), "face turned too far"),
        (FaceCheck(width=65, sharpness=64, yaw=0.36), None),  # a soft three-quarter video still: usable
    ],
)
def test_the_rule(check: FaceCheck, reason: str | None) -> None:
    problem = check.problem()
    assert (problem is None) if reason is None else (problem is not None and problem.startswith(reason))


def shrunk(faces_dir: Path, out: Path) -> Path:
    """kit1.jpg (a 129 px face) shrunk until the face is ~45 px wide."""
    image = cv2.imread(str(faces_dir / "kit_harington/kit1.jpg"))
    cv2.imwrite(str(out), cv2.resize(image, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA))
    return out


def blurred(faces_dir: Path, out: Path) -> Path:
    """person_A/img10.jpg (a 223 px face) out of focus: a Gaussian of 4 px on dlib's 150 px face chip."""
    image = cv2.imread(str(faces_dir / "person_A/img10.jpg"))
    cv2.imwrite(str(out), cv2.GaussianBlur(image, (0, 0), 4 * 223 / 100))
    return out


@pytest.mark.slow  # the CLI
def test_bad_photos_are_refused_naming_the_file_and_the_reason(tmp_path: Path, faces_dir: Path) -> None:
    data = ("--data-dir", tmp_path / "box")
    for photo, reason in [(shrunk(faces_dir, tmp_path / "small.jpg"), "face too small"),
                          (blurred(faces_dir, tmp_path / "blurred.jpg"), "face too blurred")]:  # fmt: skip
        good = faces_dir / "kit_harington/kit2.jpg"
        result = run_cli(*data, "enroll", "--list", "watchlist", "--subject", "kit", good, photo)
        assert result.returncode == 2, result.stderr
        assert f"{photo}: {reason}" in result.stderr and "Traceback" not in result.stderr
    assert "no subjects enrolled" in run_cli(*data, "lists").stdout  # nothing written, not even the good photo


@pytest.mark.slow  # the CLI
def test_one_photo_earns_a_hint_and_lists_count_usable_embeddings(tmp_path: Path, faces_dir: Path) -> None:
    data = ("--data-dir", tmp_path / "box")
    one = run_cli(*data, "enroll", "--list", "watchlist", "--subject", "kit", faces_dir / "kit_harington/kit1.jpg")
    assert one.returncode == 0 and "hint: kit has 1 photo(s); enrol 3 or more" in one.stdout
    more = [faces_dir / "kit_harington" / name for name in ("kit2.jpg", "kit3.jpg")]
    two = run_cli(*data, "enroll", "--list", "watchlist", "--subject", "kit", *more)
    assert two.returncode == 0 and not [line for line in two.stdout.splitlines() if line.startswith("hint:")]
    assert run_cli(*data, "lists").stdout.splitlines() == [
        "list\tsubject\tname\tholds\torigin",
        "watchlist\tkit\t\t3 usable embedding(s)\tlocal",
    ]


def test_the_centres_list_build_refuses_the_same_photos(tmp_path: Path, faces_dir: Path) -> None:
    subject = tmp_path / "photos" / "person-a"
    subject.mkdir(parents=True)
    (subject / "good.jpg").write_bytes((faces_dir / "person_A/img2.jpg").read_bytes())
    bad = blurred(faces_dir, subject / "blurred.jpg")
    with pytest.raises(InputError, match=f"{bad}: face too blurred"):
        build(CentreConfig(), "watchlist", 1, tmp_path / "photos", None, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
