"""Tracks end at scene cuts, and overlap alone never hands a track to another face (issue 14, item 4).

Real footage throughout: the shared clips for the no-cut side, real cuts made by joining two of
them (or the crowd clip and its mirror image: the same crowd from another camera preset, faces
where other faces were), and real faces from ../shared/data/faces for the tracker's gate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import numpy.typing as npt
import pytest

import edge.pipeline
from edge.config import GateboxConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.motion.detector import small_gray
from edge.motion.scene_cut import SceneCutDetector
from edge.pipeline import CameraPipeline, Models
from edge.recognition.gallery import Gallery
from edge.tracking.iou_tracker import IouTracker, TrackerUpdate
from edge.types import Detections, Frame

CUT_AT = 51  # the first frame of the second shot


def read_frames(path: Path, limit: int | None = None) -> Iterator[npt.NDArray[np.uint8]]:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while (limit is None or count < limit) and (read := capture.read())[0]:
        count += 1
        yield read[1]
    capture.release()


@pytest.mark.slow  # ~2-3 s each: real clips through the scene-cut detector
@pytest.mark.parametrize(
    "clip",
    ["crowd_toward_camera.mp4", "campus_pedestrians.avi", "one_by_one_from_behind.mp4", "parking_lot_cars.mp4",
     "corridor_pair_walking.gif", "parking_car_cyclist.gif"],
)  # fmt: skip
def test_no_cut_in_continuous_real_footage(shared_data: Path, clip: str) -> None:
    cuts, width = SceneCutDetector(GateboxConfig().tracking.scene_cut_correlation), GateboxConfig().motion.width
    frames = read_frames(shared_data / "video" / clip)
    found = [i for i, image in enumerate(frames) if cuts.update(small_gray(image, width))]
    assert found == []


@pytest.mark.slow  # ~2 s: real clips through the scene-cut detector
def test_every_join_of_two_real_clips_is_a_cut(shared_data: Path) -> None:
    clips = sorted(p for p in (shared_data / "video").iterdir() if p.suffix in (".mp4", ".avi", ".gif"))
    middle = {p.name: list(read_frames(p, 40))[-1] for p in clips}
    width = GateboxConfig().motion.width
    for before, after in ((a, b) for a in middle for b in middle if a != b):
        height, frame_width = middle[before].shape[:2]
        cuts = SceneCutDetector(GateboxConfig().tracking.scene_cut_correlation)
        cuts.update(small_gray(middle[before], width))
        assert cuts.update(small_gray(cv2.resize(middle[after], (frame_width, height)), width)), (before, after)


class RecordingTracker(IouTracker):
    """The pipeline's tracker, recording which ids it gave at which frame and which it ended."""

    frame = 0
    last: ClassVar[RecordingTracker]  # the one the pipeline made
    ids: dict[int, set[int]]
    ended_at: dict[int, int]

    def __init__(self, iou_threshold: float, max_missed: int, max_size_ratio: float) -> None:
        super().__init__(iou_threshold, max_missed, max_size_ratio)
        self.ids, self.ended_at = {}, {}
        RecordingTracker.last = self

    def update(self, detections: Detections, frame_index: int, image: np.ndarray | None = None) -> TrackerUpdate:
        update = super().update(detections, frame_index, image)
        for track_id in update.detections.tracker_id.tolist():
            self.ids.setdefault(track_id, set()).add(frame_index)
        self.ended_at.update(dict.fromkeys(update.ended, frame_index))
        return update

    def end_all(self) -> tuple[int, ...]:
        ended = super().end_all()
        self.ended_at.update(dict.fromkeys(ended, RecordingTracker.frame))
        return ended


def second_shots(shared_data: Path) -> dict[str, list[npt.NDArray[np.uint8]]]:
    crowd = list(read_frames(shared_data / "video" / "crowd_toward_camera.mp4"))
    campus = [cv2.resize(f, (1920, 1080)) for f in read_frames(shared_data / "video" / "campus_pedestrians.avi", 30)]
    return {
        "the crowd from another preset (mirrored)": crowd[:CUT_AT] + [cv2.flip(f, 1) for f in crowd[CUT_AT:]],
        "another place (campus clip)": crowd[:CUT_AT] + campus,
    }


@pytest.mark.slow  # ~5-10 s: the full pipeline on real clips
@pytest.mark.parametrize("shot", ["the crowd from another preset (mirrored)", "another place (campus clip)"])
def test_every_track_ends_at_the_cut_and_none_spans_it(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, shot: str
) -> None:
    monkeypatch.setattr(edge.pipeline, "IouTracker", RecordingTracker)
    config = GateboxConfig.model_validate({"recognition": {"embedding_workers": 0}})
    pipeline = CameraPipeline(config, Models.load(config), Gallery())
    try:
        for index, image in enumerate(second_shots(shared_data)[shot]):
            RecordingTracker.frame = index
            pipeline.process(Frame("gate", index, 1000.0 + index / 25, image))
    finally:
        pipeline.close()
    tracker = RecordingTracker.last
    before = {t for t, frames in tracker.ids.items() if min(frames) < CUT_AT}
    alive_at_cut = {t for t in before if tracker.ended_at.get(t, CUT_AT) >= CUT_AT}
    assert len(alive_at_cut) >= 3  # the crowd's faces were being tracked when the scene changed
    assert {tracker.ended_at.get(t) for t in alive_at_cut} == {CUT_AT}
    assert all(max(tracker.ids[t]) < CUT_AT for t in before)
    if "mirrored" in shot:  # the faces after the cut are tracked afresh
        assert any(min(frames) >= CUT_AT for frames in tracker.ids.values())


@pytest.fixture(scope="module")
def two_faces(faces_dir: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Two different people's faces, each cropped to its detected box and resized to 80x80."""
    out = []
    for photo in ("person_A/img2.jpg", "kit_harington/kit1.jpg"):
        image = cv2.imread(str(faces_dir / photo))
        (box,) = DlibHogFaceDetector(1600, 1).detect(image).xyxy.astype(int)
        out.append(cv2.resize(image[box[1] : box[3], box[0] : box[2]], (80, 80), interpolation=cv2.INTER_AREA))
    return out[0], out[1]


def scene_with(face: npt.NDArray[np.uint8], x: int, y: int) -> tuple[npt.NDArray[np.uint8], Detections]:
    image = np.full((360, 640, 3), 90, np.uint8)
    height, width = face.shape[:2]
    image[y : y + height, x : x + width] = face
    return image, Detections.from_boxes([[x, y, x + width, y + height]], [1.0])


@pytest.mark.parametrize(
    ("second", "dx", "scale", "same_track"),
    [
        ("A", 4, 1.0, True),  # the same face, moved a little: the same track
        ("A", 0, 1.15, True),  # ...and a little closer
        ("B", 4, 1.0, False),  # another person's face in the same place: a new track
        ("A", 0, 1.6, False),  # a face 60% wider between two passes is not the same one
    ],
)
def test_overlap_alone_does_not_continue_a_track(
    two_faces: tuple, second: str, dx: int, scale: float, same_track: bool
) -> None:
    tracker = IouTracker(iou_threshold=0.2, max_missed=4, max_size_ratio=1.4)
    first_image, first_boxes = scene_with(two_faces[0], 200, 100)
    face = two_faces[0 if second == "A" else 1]
    face = cv2.resize(face, None, fx=scale, fy=scale) if scale != 1.0 else face
    second_image, second_boxes = scene_with(face, 200 + dx - (face.shape[1] - 80) // 2, 100 - (face.shape[0] - 80) // 2)
    first = tracker.update(first_boxes, 0, first_image).detections.tracker_id[0]
    then = tracker.update(second_boxes, 3, second_image).detections.tracker_id[0]
    assert (then == first) == same_track


def test_end_all_ends_every_track() -> None:
    tracker = IouTracker()
    ids = tracker.update(Detections.from_boxes([[0, 0, 40, 40], [100, 0, 140, 40]], [1, 1]), 0)
    assert tracker.end_all() == tuple(ids.detections.tracker_id.tolist())
    assert len(tracker.predicted_boxes(1)) == 0
    assert tracker.update(Detections.from_boxes([[0, 0, 40, 40]], [1]), 1).detections.tracker_id[0] == 3
