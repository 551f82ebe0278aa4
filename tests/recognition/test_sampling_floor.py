"""Sampling never starves a visible person (issue 14, item 2): a floor of looks per second of
visibility, a per-camera budget shared round-robin, better views first, decided tracks never.

Table-driven on an injected clock: each pass is a frame at `ts = index / fps` holding the tracks
in view (each face painted with its track id, so the stub quality knows whose face it is); the
sampler's choices are counted per track.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from edge.config import RecognitionConfig
from edge.recognition.sampler import FaceSampler
from edge.tracking.iou_tracker import TrackerUpdate
from edge.types import Detections, Frame

FPS = 25.0
EVERY = 3  # detection (and so sampling) runs on every 3rd frame, as by default

Schedule = Callable[[float], set[int]]  # seconds -> track ids
Quality = Callable[[int, float], float]  # (track, seconds) -> face quality


def steady(track: int, t: float) -> float:
    return 10.0


def never(t: float) -> set[int]:
    return set()


def run(
    config: RecognitionConfig,
    seconds: float,
    visible: Schedule,
    quality: Quality = steady,
    decided: Schedule = never,
    promising: Schedule = never,
) -> list[tuple[float, int]]:
    """Every (time, track) the sampler chose over `seconds` of video."""
    now = [0.0]

    def face_quality(crop: np.ndarray, box: tuple) -> float:
        x1, y1, x2, y2 = (int(v) for v in box)
        return quality(int(crop[(y1 + y2) // 2, (x1 + x2) // 2, 0]), now[0])

    sampler = FaceSampler(face_quality, config)
    chosen = []
    for index in range(0, round(seconds * FPS), EVERY):
        now[0] = t = index / FPS
        view = sorted(visible(t))
        image = np.zeros((300, 200 * max(1, len(view)) + 200, 3), np.uint8)
        boxes = [[100 + 200 * i, 100, 180 + 200 * i, 180] for i in range(len(view))]
        for (x1, y1, x2, y2), track in zip(boxes, view, strict=True):
            image[y1:y2, x1:x2] = track
        faces = Detections.from_boxes(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(view)))
        update = TrackerUpdate(faces.with_tracker_ids(np.array(view, np.int64)), ())
        picked = sampler.select(Frame("gate", index, t, image), update, decided(t), promising(t))
        chosen += [(t, s.track_id) for s in picked]
    return chosen


def counts(chosen: list[tuple[float, int]]) -> Counter[int]:
    return Counter(track for _, track in chosen)


def always(*tracks: int) -> Schedule:
    return lambda t: set(tracks)


FLOOR = RecognitionConfig(min_looks_per_second=2, max_looks_per_second=5, embeddings_per_second=12)


@pytest.mark.parametrize("seconds", [1.0, 4.0, 4.3, 10.0])
def test_a_steady_stranger_is_looked_at_for_as_long_as_it_is_visible(seconds: float) -> None:
    # The failure: one look in 129 frames, because later views were never 25% better.
    chosen = run(FLOOR, seconds, always(1))
    assert counts(chosen)[1] >= FLOOR.min_looks_per_second * seconds
    times = [t for t, _ in chosen]
    assert max(np.diff(times), default=0) <= 1 / FLOOR.min_looks_per_second + EVERY / FPS  # no long blind spell
    assert times[0] == 0.0  # the first look comes at once


@pytest.mark.parametrize(
    ("tracks", "budget", "floor_each"),
    [
        (2, 2.0, 0.9),  # budget for one track at the floor: two tracks share it, about 1 look/s each
        (4, 4.0, 0.9),
        (6, 12.0, 1.9),  # enough for all at the floor
    ],
)
def test_tracks_share_a_short_budget_fairly(tracks: int, budget: float, floor_each: float) -> None:
    config = RecognitionConfig(min_looks_per_second=2, max_looks_per_second=5, embeddings_per_second=budget)
    seconds = 8.0
    chosen = run(config, seconds, always(*range(1, tracks + 1)))
    per_track = counts(chosen)
    assert len(chosen) <= budget * (seconds + 1.0)  # never over budget (plus the one-second burst)
    assert min(per_track[t] for t in range(1, tracks + 1)) >= floor_each * seconds  # cadence drops, coverage not
    assert max(per_track.values()) - min(per_track.values()) <= 2  # round-robin


def test_a_decided_track_gets_no_more_looks() -> None:
    chosen = run(FLOOR, 4.0, always(1, 2), decided=lambda t: {1} if t >= 0.5 else set())
    assert [t for t, track in chosen if track == 1 and t >= 0.5] == []
    assert counts(chosen)[2] >= 8


def test_a_clearly_better_view_jumps_the_queue() -> None:
    # Budget for ~one look a second among three tracks; track 3 turns to the camera at 2.0 s.
    config = RecognitionConfig(min_looks_per_second=2, max_looks_per_second=5, embeddings_per_second=3,
                               max_embeddings_per_pass=1, min_quality_gain=0.25)  # fmt: skip
    turned: Quality = lambda track, t: 20.0 if track == 3 and t >= 2.0 else 10.0  # noqa: E731
    chosen = run(config, 4.0, always(1, 2, 3), quality=turned)
    first_after_turn = next(track for t, track in chosen if t >= 2.0)
    assert first_after_turn == 3


def test_spare_budget_goes_to_promising_tracks_not_to_strangers() -> None:
    chosen = run(FLOOR, 4.0, always(1, 2), promising=lambda t: {1})
    per_track = counts(chosen)
    assert per_track[1] >= 4 * 4  # spare budget: near max_looks_per_second (5; passes come every 0.12 s)
    assert 8 <= per_track[2] <= 10  # the floor, not more: a stranger costs 2 looks a second


def test_a_track_that_comes_and_goes_is_looked_at_whenever_it_is_back() -> None:
    visible: Schedule = lambda t: {1} if t < 1.0 or t >= 3.0 else set()  # noqa: E731
    chosen = run(FLOOR, 5.0, visible)
    assert sum(t < 1.0 for t, _ in chosen) >= 2 and sum(t >= 3.0 for t, _ in chosen) >= 4
    assert next(t for t, _ in chosen if t >= 3.0) == 3.0  # overdue: looked at on its first pass back
