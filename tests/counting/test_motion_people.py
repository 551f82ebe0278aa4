"""People as what moves (`passages.people.detector: motion`): rendered scenes through the people stage.

A textured, slightly noisy background the model learns first; people are upright rectangles of one
colour walking across it. The gate line is the vertical middle, the right is outside (`out`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from edge.config import GateLineConfig, PeoplePassagesConfig
from edge.counting.stage import PeopleStage
from edge.detectors.motion_people import MotionPeopleDetector, join_body_parts
from edge.types import Frame

WIDTH, HEIGHT = 320, 240
LINE = GateLineConfig(start=(0.5, 0.0), end=(0.5, 1.0), outside=(1.0, 0.5))
LEARN = 30  # empty frames before anyone walks in
BACKGROUND = np.random.default_rng(7).integers(60, 140, (HEIGHT, WIDTH, 3)).astype(np.uint8)


@dataclass(frozen=True)
class Walker:
    """A person: x of the box's left edge at frame `LEARN` + t is x0 + speed * t (px); None: not there."""

    x0: float
    speed: float
    colour: tuple[int, int, int]
    top: int = 100
    size: tuple[int, int] = (18, 60)  # width, height: 1.4 % of the frame
    leaves_after: int | None = None  # frames after which it has gone
    unseen: tuple[float, float] | None = None  # rows (fractions of its height) the colour of the background

    def box(self, t: int) -> tuple[int, int, int, int] | None:
        if t < 0 or (self.leaves_after is not None and t > self.leaves_after):
            return None
        x = int(self.x0 + self.speed * t)
        return x, self.top, x + self.size[0], self.top + self.size[1]


def scene(walkers: list[Walker], frames: int, brightness: dict[int, int] | None = None) -> list[Frame]:
    rng = np.random.default_rng(11)
    out = []
    for index in range(LEARN + frames):
        image = BACKGROUND.astype(np.int16) + rng.integers(-3, 4, BACKGROUND.shape)  # sensor noise
        for walker in walkers:
            box = walker.box(index - LEARN)
            if box:
                x1, y1, x2, y2 = box
                # Shaded top to bottom (hair, shirt, trousers), as people are: a flat patch has no looks.
                shading = np.linspace(-40, 40, y2 - y1)[:, None, None].astype(np.int16)
                image[y1:y2, max(0, x1) : max(0, x2)] = np.array(walker.colour, np.int16) + shading
                if walker.unseen:
                    top, bottom = (y1 + round(f * (y2 - y1)) for f in walker.unseen)
                    image[top:bottom, max(0, x1) : max(0, x2)] = BACKGROUND[top:bottom, max(0, x1) : max(0, x2)]
        shift = max((v for k, v in (brightness or {}).items() if index >= k), default=0)
        image += shift
        out.append(Frame("gate", index, 1000.0 + index / 10, image.clip(0, 255).astype(np.uint8)))
    return out


def count(frames: list[Frame]) -> list[str]:
    stage = PeopleStage(PeoplePassagesConfig(enabled=True, detector="motion"), LINE, MotionPeopleDetector(), 0.15)
    for frame in frames:
        stage.bodies(frame, np.empty((0, 4), np.float32))
    stage.flush()
    return sorted(p.direction for p in stage.take_passages())


LEFT_TO_RIGHT = Walker(x0=40, speed=5, colour=(40, 40, 40))
RIGHT_TO_LEFT = Walker(x0=270, speed=-5, colour=(210, 200, 60))
SHIRT_LIKE_THE_WALL = Walker(x0=40, speed=5, colour=(40, 40, 40), size=(18, 80), unseen=(0.25, 0.5))
NEARER_RIGHT_TO_LEFT = Walker(x0=270, speed=-5, colour=(210, 200, 60), top=140)

CASES = [
    # (what, walkers, frames, brightness steps {frame: +grey}, directions counted)
    ("one person walking out across the line", [LEFT_TO_RIGHT], 60, None, ["out"]),
    ("one person walking in across the line", [RIGHT_TO_LEFT], 60, None, ["in"]),
    ("a person standing still left of the line", [Walker(60, 0, (40, 40, 40))], 60, None, []),
    ("a person who walks up to the line and stops", [Walker(40, 5, (40, 40, 40), leaves_after=None)], 20, None, []),
    ("the light changes, nobody there", [], 60, {LEARN + 20: 70}, []),
    ("the light changes while a person walks out", [LEFT_TO_RIGHT], 60, {LEARN + 10: 70}, ["out"]),
    # Two people pass each other at the line, one a little nearer the camera: their blobs merge into one
    # for 5 frames, then part; the tracks keep them apart by their looks, and each is counted once.
    # (Fully hidden behind one another, at one depth, both are lost: docs/benchmarks.md, "Counting".)
    ("two people passing each other at the line", [LEFT_TO_RIGHT, NEARER_RIGHT_TO_LEFT], 60, None, ["in", "out"]),
    # One person whose shirt is the colour of the wall: head and legs are two blobs, joined into one body.
    ("a person in two blobs (shirt like the wall)", [SHIRT_LIKE_THE_WALL], 60, None, ["out"]),
    ("a person too small to be one (a bird, a leaf)", [Walker(40, 5, (40, 40, 40), size=(4, 4))], 60, None, []),
]


@pytest.mark.parametrize(("walkers", "frames", "brightness", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_motion_people_counting(
    walkers: list[Walker], frames: int, brightness: dict[int, int] | None, expected: list[str]
) -> None:
    assert count(scene(walkers, frames, brightness)) == expected


def test_a_person_walking_out_is_one_box_on_the_person() -> None:
    detector = MotionPeopleDetector()
    found = None
    for frame in scene([LEFT_TO_RIGHT], 10):
        found = detector.update(frame.image)
    assert found is not None and len(found) == 1
    x1, y1, x2, y2 = LEFT_TO_RIGHT.box(9) or (0, 0, 0, 0)
    box = found.xyxy[0]
    assert abs(box[0] - x1) < 8 and abs(box[2] - x2) < 8 and abs(box[1] - y1) < 8 and abs(box[3] - y2) < 8
    assert list(found.data["class_name"]) == ["person"]


def test_a_change_of_light_is_no_one() -> None:
    detector = MotionPeopleDetector()
    frames = scene([], 5, {LEARN + 2: 80})
    found = [len(detector.update(frame.image)) for frame in frames]
    assert found[LEARN + 2] == 0 and sum(found[LEARN:]) == 0


def boxes(*rows: tuple[float, float, float, float]) -> npt.NDArray[np.float32]:
    return np.array(rows, np.float32).reshape(-1, 4)


@pytest.mark.parametrize(
    ("parts", "joined"),
    [
        # head above legs, clothes the wall's colour between them: one body
        (boxes((100, 10, 130, 40), (95, 60, 135, 140)), boxes((95, 10, 135, 140))),
        # two people side by side: two
        (boxes((100, 50, 130, 140), (140, 50, 170, 140)), boxes((100, 50, 130, 140), (140, 50, 170, 140))),
        # two people in one column, one far behind the other: two
        (boxes((100, 10, 110, 40), (100, 120, 130, 200)), boxes((100, 10, 110, 40), (100, 120, 130, 200))),
        # three pieces of one body (head, torso, legs) joined step by step: one
        (boxes((100, 0, 120, 20), (95, 25, 125, 60), (96, 70, 126, 120)), boxes((95, 0, 126, 120))),
        (boxes(), boxes()),
    ],
    ids=["head-and-legs", "side-by-side", "far-apart-in-one-column", "three-pieces", "none"],
)
def test_body_parts_are_joined_and_people_are_not(
    parts: npt.NDArray[np.float32], joined: npt.NDArray[np.float32]
) -> None:
    result = join_body_parts(parts)
    assert sorted(map(tuple, result.tolist())) == sorted(map(tuple, joined.tolist()))


def test_the_shipped_default_finds_people_by_motion_and_hog_stays_a_choice() -> None:
    from edge.config import GateboxConfig
    from edge.detectors.hog_people import HogPeopleDetector
    from edge.pipeline import person_detector

    def built(people: dict[str, object]) -> object:
        return person_detector(GateboxConfig.model_validate({"passages": {"people": people}}), None)

    assert isinstance(built({"enabled": True}), MotionPeopleDetector)
    assert isinstance(built({"enabled": True, "detector": "hog"}), HogPeopleDetector)
    assert built({"enabled": True, "detector": "none"}) is None and built({"enabled": False}) is None


def test_a_cut_to_another_scene_is_no_one() -> None:
    """A camera switched to another view (or a cut in footage): the whole frame differs, like a change of light."""
    other = np.random.default_rng(3).integers(60, 140, BACKGROUND.shape).astype(np.uint8)
    frames = scene([], 40)
    cut = [Frame(f.camera, f.index, f.ts, other) if f.index >= LEARN + 10 else f for f in frames]
    detector = MotionPeopleDetector()
    assert sum(len(detector.update(frame.image)) for frame in cut[LEARN:]) == 0
    assert count(cut) == []
