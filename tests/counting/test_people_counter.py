"""People passages: one per person crossing the gate line, whatever their tracks do."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import GateLineConfig, PeoplePassagesConfig
from edge.counting.counts import PassageTally
from edge.counting.people import PeopleCounter, PersonPassage, Source
from edge.protocol.messages import Passage
from edge.tracking.iou_tracker import TrackerUpdate
from edge.types import Detections, Frame

# A horizontal line half-way down a 100 x 100 frame; outside is the bottom.
LINE = GateLineConfig(start=(0.0, 0.5), end=(1.0, 0.5), outside=(0.5, 1.0), margin=0.02)
IMAGE = np.zeros((100, 100, 3), np.uint8)


def frame(i: int) -> Frame:
    return Frame("gate", i, 1000.0 + i, IMAGE)  # one frame a second


def boxes(*tracks: tuple[int, float, float], size: tuple[float, float] = (10, 20)) -> Detections:
    """(track id, x centre, y bottom) -> a box of `size` (width, height) per track."""
    w, h = size
    xyxy = [(x - w / 2, y - h, x + w / 2, y) for _, x, y in tracks]
    return Detections.from_boxes(xyxy, [0.9] * len(tracks)).with_tracker_ids([t for t, _, _ in tracks])


class Scene:
    """Feeds a counter frame by frame and collects what it decided."""

    def __init__(self, **config: object) -> None:
        self.counter = PeopleCounter(LINE, PeoplePassagesConfig(enabled=True, **config))  # type: ignore[arg-type]
        self.index = 0
        self.passages: list[PersonPassage] = []

    def step(self, source: Source = "body", *tracks: tuple[int, float, float], ended: tuple[int, ...] = ()) -> None:
        size = (8, 8) if source == "face" else (20, 40)
        self.counter.update(source, frame(self.index), TrackerUpdate(boxes(*tracks, size=size), ended))
        self.index += 1
        self.passages += self.counter.take_passages()

    def idle(self, seconds: int) -> None:
        for _ in range(seconds):
            self.step("body")

    def finish(self) -> list[PersonPassage]:
        self.counter.flush()
        return self.passages + self.counter.take_passages()


def test_a_person_walking_out_is_one_passage_out_decided_after_the_track_ends() -> None:
    scene = Scene()
    for y in (30, 40, 60, 70):
        scene.step("body", (1, 50, y))
    scene.step("body", ended=(1,))
    assert scene.passages == []  # a broken track may still rejoin
    scene.idle(3)
    [passage] = scene.passages
    assert passage.direction == "out" and passage.ts == 1002.0 and passage.snapshot_jpeg is None


def test_a_track_counts_once_however_often_it_crosses() -> None:
    scene = Scene()
    for y in (30, 70, 30, 70, 30):
        scene.step("body", (1, 50, y))
    [passage] = scene.finish()
    assert passage.direction == "out"


def test_a_broken_track_rejoined_on_the_same_side_does_not_count_again() -> None:
    scene = Scene()
    scene.step("body", (1, 50, 30))
    scene.step("body", (1, 50, 70))  # crossed out
    scene.step("body", ended=(1,))
    scene.step("body", (2, 52, 72))  # the same person, a new track: near, same side, within the window
    scene.step("body", (2, 52, 30))  # walks back in: the same person's track does not count twice
    assert len(scene.finish()) == 1


def test_a_track_broken_while_crossing_counts_the_crossing_made_unseen() -> None:
    scene = Scene()
    scene.step("body", (1, 50, 45))
    scene.step("body", ended=(1,))
    scene.step("body", (2, 50, 55))  # reappears past the line: it crossed during the gap
    scene.step("body", (2, 50, 70))
    [passage] = scene.finish()
    assert passage.direction == "out"


def test_a_new_track_far_away_or_late_is_someone_else() -> None:
    scene = Scene(rejoin_within_s=2.0, rejoin_distance=0.15)
    scene.step("body", (1, 20, 30))
    scene.step("body", (1, 20, 70))
    scene.step("body", ended=(1,))
    scene.idle(3)  # past the window
    scene.step("body", (2, 20, 70))
    scene.step("body", (2, 20, 30))  # in
    scene.step("body", (3, 80, 30))
    scene.step("body", (3, 80, 70))  # out, far from track 2
    assert sorted(p.direction for p in scene.finish()) == ["in", "out", "out"]


def test_a_face_and_a_body_of_one_person_count_once() -> None:
    scene = Scene()
    # The body's feet cross first; its face (inside the body box, upper half) crosses later.
    for i, y in enumerate((30, 45, 60, 70, 80, 90)):
        scene.step("body", (7, 50, y))
        scene.step("face", (3, 50, y - 30), ended=(3,) if i == 5 else ())
    scene.step("body", ended=(7,))
    [passage] = scene.finish()
    assert passage.direction == "out"


def test_two_people_side_by_side_count_twice() -> None:
    scene = Scene()
    for y in (30, 70):
        scene.step("body", (1, 20, y), (2, 80, y))
    assert [p.direction for p in scene.finish()] == ["out", "out"]


def test_the_face_view_travels_only_with_snapshots_on() -> None:
    for snapshots, expected in ((False, None), (True, b"jpeg")):
        scene = Scene(snapshots=snapshots, snapshot_retention_days=1.0)
        for i, y in enumerate((30, 70)):
            scene.counter.update("face", frame(i), TrackerUpdate(boxes((1, 50, y)), ()), {1: b"jpeg"})
            assert scene.counter.take_passages() == []
        scene.counter.flush()
        [passage] = scene.counter.take_passages()
        assert passage.snapshot_jpeg == expected
        message = passage.message("site-a", "gate-01")
        assert message.subject == "person" and message.direction == "out" and message.passage_id
        assert (message.snapshot_expires_at == passage.ts + 86400) if snapshots else message.snapshot_jpeg_b64 is None


def test_passage_schema_people_and_vehicles_old_vehicle_passages_still_valid() -> None:
    old = {"schema": "gatebox.passage/1", "site": "s", "box_id": "b", "camera": "c", "ts": 1.0, "plate": "AB123"}
    assert Passage.model_validate(old).subject == "vehicle"
    with pytest.raises(ValueError, match="plate"):
        Passage.model_validate(old | {"plate": None})
    with pytest.raises(ValueError, match="no plate"):
        Passage.model_validate(old | {"schema": "gatebox.passage/2", "subject": "person"})
    person = Passage(site="s", box_id="b", camera="c", ts=1.0, subject="person", direction="in")
    assert Passage.model_validate_json(person.model_dump_json(by_alias=True)) == person


def test_the_tally_counts_per_camera_subject_and_direction() -> None:
    tally = PassageTally()
    tally.add([Passage(site="s", box_id="b", camera="gate", ts=1.0, subject="person", direction="in"),
               Passage(site="s", box_id="b", camera="gate", ts=2.0, subject="person", direction="in"),
               Passage(site="s", box_id="b", camera="gate", ts=3.0, plate="AB123", direction="out"),
               Passage(site="s", box_id="b", camera="lane", ts=4.0, plate="AB124")])  # fmt: skip
    report = tally.report()
    assert (report["gate"].person_in, report["gate"].vehicle_out, report["gate"].person_out) == (2, 1, 0)
    assert report["lane"].vehicle_unknown == 1
