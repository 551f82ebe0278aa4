from __future__ import annotations

import numpy as np
import pytest

from edge.config import OperatingPoint, RecognitionConfig
from edge.decision import AlertDecider
from edge.types import FaceObservation, FaceSample, Match

# One operating point for every list ({} entries: the defaults given here); per-list points: test_evidence_decision.py.
CONFIG = RecognitionConfig(
    match_distance=0.5, strong_distance=0.4, min_matching_frames=3, evidence_window=6, min_margin=0.0,
    subject_cooldown_s=60, operating_points={"watchlist": OperatingPoint(), "missing_elders": OperatingPoint()},
)  # fmt: skip
CROP = np.zeros((4, 4, 3), np.uint8)


def obs(frame: int, track: int, subject: str | None, distance: float = 0.45, fps: float = 25.0) -> FaceObservation:
    sample = FaceSample("gate", frame, 1000.0 + frame / fps, track, (0, 0, 10, 10), CROP, (0, 0, 4, 4), 1.0)
    return FaceObservation(sample, Match("watchlist", subject, distance) if subject else None)


@pytest.mark.parametrize(
    ("sequence", "alert_frame"),
    [
        ([("s1", 0.45)], None),  # one fluke frame never alerts
        ([("s1", 0.45), (None, 0), ("s1", 0.45), (None, 0)], None),
        ([("s1", 0.45), ("s1", 0.48), ("s1", 0.45)], 2),
        ([("s1", 0.45), ("s2", 0.45), ("s1", 0.45), ("s2", 0.45), ("s1", 0.45)], 4),  # a clear leader
        ([("s1", 0.38)], 0),  # one very confident frame suffices
        ([("s2", 0.45), ("s2", 0.45), ("s1", 0.38)], None),  # ...unless another subject leads the track
    ],
)
def test_track_evidence(sequence: list[tuple[str | None, float]], alert_frame: int | None) -> None:
    decider = AlertDecider(CONFIG)
    alerts = [(i, d) for i, (s, dist) in enumerate(sequence) for d in decider.update([obs(i, 1, s, dist)])]
    assert [i for i, _ in alerts] == ([] if alert_frame is None else [alert_frame])


def test_a_track_alerts_once_however_long_it_stays() -> None:
    decider = AlertDecider(CONFIG)
    alerts = [a for i in range(100) for a in decider.update([obs(i, 1, "s1")])]
    assert len(alerts) == 1 and alerts[0].matching_frames == 3 and alerts[0].match.subject_id == "s1"
    assert alerts[0].sample.frame_index == 2


def test_broken_track_of_the_same_person_does_not_alert_again_within_cooldown() -> None:
    decider = AlertDecider(CONFIG)
    first = [a for i in range(5) for a in decider.update([obs(i, 1, "s1")])]
    decider.forget([1])
    again = [a for i in range(10, 15) for a in decider.update([obs(i, 2, "s1")])]
    later = [a for i in range(2000, 2005) for a in decider.update([obs(i, 3, "s1")])]  # 80 s on
    assert (len(first), len(again), len(later)) == (1, 0, 1)
    assert 2 in decider.decided_tracks  # settled without a second alert: stop spending on it


def test_late_samples_of_an_ended_track_are_ignored() -> None:
    decider = AlertDecider(CONFIG)
    decider.update([obs(0, 1, "s1"), obs(1, 1, "s1")])
    assert decider.promising_tracks == {1}
    decider.forget([1])
    assert decider.update([obs(2, 1, "s1"), obs(3, 1, "s1")]) == [] and decider.promising_tracks == set()


def test_two_people_alert_independently() -> None:
    decider = AlertDecider(CONFIG)
    alerts = [a for i in range(5) for a in decider.update([obs(i, 1, "s1"), obs(i, 2, "s2")])]
    assert sorted(a.match.subject_id for a in alerts) == ["s1", "s2"]
