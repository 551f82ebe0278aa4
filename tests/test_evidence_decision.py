"""Decisions on track-level evidence (issue 14, item 3): k of the last n samples, a margin over
the runner-up subject, per-list operating points (missing elders: recall; watchlist: precision),
and a lone fluke that never alerts. Default thresholds are the measured ones in edge/config.py."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from edge.config import RecognitionConfig
from edge.decision import AlertDecider
from edge.recognition.gallery import Gallery
from edge.recognition.matching import nearest_subjects
from edge.types import FaceObservation, FaceSample, Match

DEFAULTS = RecognitionConfig(subject_cooldown_s=0)
CROP = np.zeros((4, 4, 3), np.uint8)
MISS = None  # a look at the track that matched nobody

Look = tuple[float, float] | float | None  # distance (runner-up far away), (distance, runner-up), or a miss


def observation(frame: int, list_name: str, look: Look, subject: str = "s1") -> FaceObservation:
    sample = FaceSample("gate", frame, 1000.0 + frame / 25, 1, (0, 0, 10, 10), CROP, (0, 0, 4, 4), 1.0)
    if look is None:
        return FaceObservation(sample, None)
    distance, runner_up = look if isinstance(look, tuple) else (look, 0.9)
    return FaceObservation(sample, Match(list_name, subject, distance, runner_up_distance=runner_up))


def alert_at(list_name: str, looks: Sequence[Look], config: RecognitionConfig = DEFAULTS) -> int | None:
    """The index of the look at which the track alerts, or None."""
    decider = AlertDecider(config)
    for i, look in enumerate(looks):
        if decider.update([observation(i, list_name, look)]):
            return i
    return None


@pytest.mark.parametrize(
    ("looks", "missing_elders", "watchlist"),
    [
        # The watchlisted man, looked at steadily: 0.58 first, then 0.45-0.52.
        ([0.58, 0.52, 0.48, 0.50, 0.45], 2, 3),
        # A 40 px face enrolled from a photo of another day: genuine samples around 0.52-0.56.
        ([0.55, 0.53, MISS, 0.52, 0.55, 0.53], 1, 5),
        # Only just within the recall point: an operator confirms a missing elder; the watchlist waits.
        ([0.55, 0.555, 0.55, 0.55], 1, None),
        ([0.38], 0, 0),  # one very close sample, clear of everyone else, decides on its own
        ([0.43], 0, None),  # ...only the recall point takes a single sample this far
    ],
)
def test_per_list_operating_points(looks: list[Look], missing_elders: int | None, watchlist: int | None) -> None:
    assert alert_at("missing_elders", looks) == missing_elders
    assert alert_at("watchlist", looks) == watchlist


@pytest.mark.parametrize("list_name", ["missing_elders", "watchlist", "at_risk_elders"])
@pytest.mark.parametrize(
    "looks",
    [
        [0.50] + [MISS] * 100,  # a lone fluke frame never alerts, however long the track stays
        ([0.50] + [MISS] * 9) * 10,  # nor does a stranger who resembles a subject in one look in ten
        [0.50, MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, 0.50] + [MISS] * 20,
    ],
)
def test_flukes_never_alert(list_name: str, looks: list[Look]) -> None:
    assert alert_at(list_name, looks) is None


def test_old_samples_do_not_outvote_what_the_track_shows_now() -> None:
    # Two early matches, then a clear view that matches nobody for a while: the early pair is out of the window.
    assert alert_at("watchlist", [0.50, 0.50] + [MISS] * 6 + [0.50]) is None
    # A person first seen side-on (no match), then turning to the camera: decided on the recent looks.
    assert alert_at("watchlist", [MISS] * 12 + [0.50, 0.52, 0.49]) == 14


@pytest.mark.parametrize(
    ("runner_up", "alerts"),
    [
        (0.90, True),  # nobody else near
        (0.52, False),  # two enrolled people almost equally near: the samples count for neither
    ],
)
def test_ambiguous_samples_count_for_nobody(runner_up: float, alerts: bool) -> None:
    assert (alert_at("watchlist", [(0.48, runner_up)] * 6) is not None) == alerts


def test_a_subject_must_lead_the_window() -> None:
    decider = AlertDecider(DEFAULTS)
    looks = [("s1", 0.50), ("s2", 0.50), ("s1", 0.50), ("s2", 0.50), ("s2", 0.50), ("s1", 0.50)]
    alerts = [a for i, (s, d) in enumerate(looks) for a in decider.update([observation(i, "watchlist", d, s)])]
    assert [a.match.subject_id for a in alerts] == ["s2"]  # s2 reached 3 first while leading; s1 then tied


def test_defaults_order_the_lists_by_recall() -> None:
    elders, watchlist = DEFAULTS.operating_point("missing_elders"), DEFAULTS.operating_point("watchlist")
    assert elders.match_distance > watchlist.match_distance and elders.strong_distance > watchlist.strong_distance
    assert elders.min_matching_frames < watchlist.min_matching_frames and elders.min_margin < watchlist.min_margin
    # An entry given in the config replaces that list's built-in point; the others keep theirs.
    config = RecognitionConfig.model_validate({"operating_points": {"watchlist": {"match_distance": 0.5}}})
    assert config.operating_point("watchlist").match_distance == 0.5
    assert config.operating_point("watchlist").min_matching_frames == config.min_matching_frames
    assert config.operating_point("missing_elders") == elders
    assert config.max_match_distance == elders.match_distance  # the gallery is searched as far as any list counts


def test_matching_reports_the_nearest_other_subject() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=128).astype(np.float32), rng.normal(size=128).astype(np.float32)
    a, b = a / np.linalg.norm(a) * 0.5, b / np.linalg.norm(b) * 0.5
    gallery = Gallery(np.stack([a, a + 0.01, b]), ("watchlist",) * 3, ("A", "A", "B"))
    (match,) = nearest_subjects(gallery, a[None] + 0.001, 0.6)
    assert match is not None
    assert (match.subject_id, round(match.distance, 2)) == ("A", 0.01)
    assert match.runner_up_distance == pytest.approx(float(np.linalg.norm(a + 0.001 - b)), abs=1e-4)
    assert nearest_subjects(gallery, -a[None] * 3, 0.6) == [None]
    (alone,) = nearest_subjects(Gallery(a[None], ("watchlist",), ("A",)), a[None], 0.6)
    assert alone is not None
    assert alone.runner_up_distance == float("inf")


def test_with_an_onnx_embedder_every_list_takes_its_cosine_thresholds_and_keeps_its_k_of_n() -> None:
    """Per-list distances are dlib's (Euclidean): an ONNX model's cosine distances must not be judged by them."""
    dlib_points = RecognitionConfig()
    onnx_points = RecognitionConfig.model_validate({"embedder": "onnx", "onnx": {"model": "/x.onnx"}})
    onnx_points = onnx_points.with_embedder_thresholds()
    for list_name in ("missing_elders", "watchlist", "another_list"):
        point, before = onnx_points.operating_point(list_name), dlib_points.operating_point(list_name)
        assert (point.match_distance, point.strong_distance) == (0.60, 0.45)
        assert (point.min_matching_frames, point.evidence_window, point.min_margin) == (
            before.min_matching_frames, before.evidence_window, before.min_margin,
        )  # fmt: skip
