"""The recognition benchmark's instrument (benchmarks/recognition.py, gateclips.py, verification.py),
and its fast subset as a regression gate: cross-photo gate clips through the whole pipeline, every
subject found, no stranger ever alerted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import recognition
from benchmarks.gateclips import Actor, ClipSpec, compose
from benchmarks.verification import Pairs, at_far, at_frr, equal_error, far_frr, roc, verify
from edge.config import GateboxConfig
from edge.detectors import build_face_detector
from edge.models import verify_models
from edge.scoring import TruthRow

# Measured on the pipeline of main before issue 14 (docs/benchmarks.md, Recognition): every subject of
# the quick subset alerted. A change that loses one of them, or alerts on a stranger, fails here.
QUICK_RECALL_FLOOR = 1.0


@pytest.fixture(scope="module")
def identities_dir(shared_data: Path) -> Path:
    folder = shared_data / "faces" / "identities"
    if not (folder / "identities.csv").is_file():
        pytest.skip(f"identity photos not found at {folder}")
    return folder


class _Alert:
    def __init__(self, subject_id: str, frame: int, bbox: tuple[int, int, int, int] = (0, 0, 10, 10)) -> None:
        self.subject_id, self.frame, self.bbox = subject_id, frame, bbox
        self.list, self.track_id, self.score, self.distance, self.matching_frames = "watchlist", 1, 0.6, 0.4, 3


def test_roc_rates_and_operating_points_on_known_distances() -> None:
    pairs = Pairs(genuine=np.array([0.2, 0.3, 0.4, 0.5]), impostor=np.array([0.45, 0.6, 0.7, 0.8, 0.9]))
    assert far_frr(pairs, 0.5) == (0.2, 0.25)  # 0.45 accepted; 0.5 rejected (accepted strictly below)
    assert far_frr(pairs, 0.41) == (0.0, 0.25)
    eer, threshold = equal_error(roc(pairs))
    assert (eer, threshold) == (0.225, 0.5)
    strict = at_far(pairs, 0.0)
    assert strict["threshold"] == 0.45 and strict["far"] == 0.0 and strict["frr"] == 0.25
    lenient = at_frr(pairs, 0.0)  # keep every genuine pair: just above the worst one
    assert lenient["frr"] == 0.0 and lenient["far"] == 0.2 and 0.5 < lenient["threshold"] < 0.5001


def test_an_alert_on_a_strangers_face_is_false_even_while_the_subject_is_in_view() -> None:
    truth = [TruthRow("id03", 10, 100)]
    on_stranger = recognition.score_alerts([_Alert("id03", 40)], truth, 25.0, lambda alert: "id06")
    assert (on_stranger["alerted"], on_stranger["false_alerts"]) == (0, 1)
    assert on_stranger["false"][0]["subject_id"] == "id03 on id06"
    on_subject = recognition.score_alerts([_Alert("id03", 40)], truth, 25.0, lambda alert: "id03")
    assert (on_subject["alerted"], on_subject["false_alerts"]) == (1, 0)
    assert on_subject["subjects"][0]["seconds_to_alert"] == 1.2


def test_config_overrides_reach_the_pipeline_config_and_typos_are_refused() -> None:
    config = recognition.build_config(None, ["recognition.min_quality_gain=0", "detector.every_n_frames=2"], None)
    assert config.recognition.min_quality_gain == 0 and config.detector.every_n_frames == 2
    with pytest.raises(SystemExit, match="min_quality_gian"):
        recognition.build_config(None, ["recognition.min_quality_gian=0"], None)


def test_the_suite_never_films_an_enrolment_photo_and_has_strangers(identities_dir: Path) -> None:
    people = recognition.identities(identities_dir)
    split = recognition.enrolment_split(people)
    cases = recognition.composed_cases(people)
    assert len(cases) >= 30
    for case in cases:
        enrolled = recognition.FOLDS[case.gallery]
        for actor in case.spec.actors:
            assert (actor.role == "subject") == (actor.identity in enrolled), case.spec.name
            if actor.role == "subject":
                assert actor.photo not in split[actor.identity][0], case.spec.name
    labels = [c.label for c in cases]
    assert labels.count("stranger only") >= 4 and labels.count("subject + stranger side by side") >= 4
    assert {c.spec.motion for c in cases} == {"standing", "toward", "sideways"}
    assert set(recognition.QUICK) <= {c.spec.name for c in cases}


@pytest.mark.slow  # ~6 s: composes and reads real clips
def test_a_composed_clip_is_deterministic_and_its_truth_is_where_the_face_is(
    identities_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    import cv2

    spec = ClipSpec("check", (Actor("id03", "img6.jpg", "subject"),), "standing", (70, 70), ("noise", "jpeg"))
    first = compose(spec, identities_dir, shared_data / "video", tmp_path / "a")
    again = compose(spec, identities_dir, shared_data / "video", tmp_path / "b")
    assert first.boxes == again.boxes and first.path.read_bytes() == again.path.read_bytes()
    (row,) = first.truth()
    assert row.subject_id == "id03" and row.last_frame - row.first_frame > 100  # 4 s standing at 25 fps
    detector = build_face_detector(GateboxConfig().detector, verify_models(GateboxConfig().models_path))
    capture = cv2.VideoCapture(str(first.path))
    found = 0
    for index in range(first.frame_count):
        ok, image = capture.read()
        assert ok
        truth = first.boxes[0][index]
        if index % 10 or truth is None or not (truth[0] >= 0 and truth[2] < image.shape[1]):
            continue
        faces = detector.detect(image)
        assert any(first.actor_at(index, box) == 0 for box in faces.xyxy.tolist()), index
        found += 1
    assert found >= 10


@pytest.mark.slow
def test_quick_subset_every_subject_alerts_and_no_stranger_does(identities_dir: Path, tmp_path: Path) -> None:
    report = recognition.run(GateboxConfig(), "composed", True, tmp_path, progress=lambda line: None)
    print("\n" + recognition.markdown(report))
    total = report["totals"]["all"]
    strangers = [a for c in report["cases"] for a in c["actors"] if a["role"] == "stranger"]
    assert total["cases"] == len(recognition.QUICK) and len(strangers) >= 2
    assert total["false_alerts"] == 0, [c["false"] for c in report["cases"] if c["false"]]
    assert total["recall"] >= QUICK_RECALL_FLOOR, [c["name"] for c in report["cases"] if c["missed"]]


@pytest.mark.slow  # ~15 s: every identity photo through dlib
def test_verification_separates_the_identities(identities_dir: Path) -> None:
    config = GateboxConfig()
    photo = verify(config, identities_dir, ("photo",))["conditions"]["photo"]
    assert (photo["genuine_pairs"], photo["impostor_pairs"]) == (93, 727)
    # dlib on these photos (measured): genuine p95 0.51, impostors from 0.63; EER 0.
    assert photo["eer"] <= 0.02
    assert photo["at_config"]["match_distance"]["far"] == 0.0
    assert photo["genuine"]["p50"] < config.recognition.match_distance < photo["impostor"]["min"]
