"""`CameraPipeline.process` and `finish` return one typed `FrameResult(alerts, passages)` (issue 15,
item 4): a listed car's plate alert comes in the frame its reads agreed, its passage record in the
frame its track ended (or from `finish` while it is still in view), each once. In process, with the
detectors and the reader replaced by stand-ins, so only the wiring is under test."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge.config import GateboxConfig
from edge.pipeline import CameraPipeline, FrameResult, Models
from edge.plates.finder import CROP
from edge.plates.matcher import ListedPlate, PlateMatcher
from edge.plates.reader import PlateRead
from edge.plates.stage import PassageRecord
from edge.protocol.embedding import DLIB_EMBEDDER
from edge.recognition.gallery import Gallery
from edge.types import Detections, Frame

PLATE = "皖AYL375"
CAR_BOX = [100.0, 100.0, 236.0, 136.0]


class NoFaces:
    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        return Detections()


class NoEmbeddings:
    spec, recipe, landmarks = DLIB_EMBEDDER, None, None  # no face is ever found, so none is embedded

    def embed_crops(self, crops: Any, boxes: Any) -> npt.NDArray[np.float32]:
        raise AssertionError("no face to embed")


class CarFinder:
    """One plate at CAR_BOX in every bright frame, none in a dark one."""

    def find(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        if not image_bgr.any():
            return Detections(data={CROP: np.empty((0, 36, 136, 3), np.uint8)})
        return Detections.from_boxes([CAR_BOX], [0.9], data={CROP: np.full((1, 36, 136, 3), 200, np.uint8)})

    def find_text_lines(self, image_bgr: npt.NDArray[np.uint8], long_side: int | None = None) -> Detections:
        return Detections(data={CROP: np.empty((0, 36, 136, 3), np.uint8)})  # the second path finds nothing more


class Reader:
    def read_with_colour(self, crop: npt.NDArray[np.uint8]) -> PlateRead:
        return PlateRead(PLATE, 0.9, "ordinary", "blue")


def pipeline() -> CameraPipeline:
    config = GateboxConfig.model_validate({
        "motion": {"enabled": False},
        "recognition": {"embedding_workers": 0},
        "plates": {"enabled": True, "passages": True, "every_n_frames": 1, "min_reads": 2},
    })  # fmt: skip
    models = Models(NoFaces(), NoEmbeddings(), CarFinder(), Reader())  # type: ignore[arg-type]
    listed = PlateMatcher({PLATE: ListedPlate("plate_watchlist", "car-7", "v3")}, 0)
    return CameraPipeline(config, models, Gallery(), plates=listed)


def frame(index: int, car: bool) -> Frame:
    return Frame("gate", index, 1000.0 + index, np.full((480, 640, 3), 90 if car else 0, np.uint8))


def test_alerts_and_passages_come_in_the_frame_they_happen() -> None:
    gatebox = pipeline()
    try:
        results = [gatebox.process(frame(i, car=i < 5)) for i in range(12)]  # the car is in view for 5 frames
        end = gatebox.finish("gate")
    finally:
        gatebox.close()
    assert all(isinstance(r, FrameResult) for r in [*results, end])
    alerted = [i for i, r in enumerate(results) if r.alerts]
    assert alerted == [1]  # the second read agreed
    (alert,) = results[1].alerts
    assert (alert.kind, alert.plate, alert.subject_id, alert.list_version) == ("plate_match", PLATE, "car-7", "v3")
    passed = [i for i, r in enumerate(results) if r.passages]
    assert passed == [8]  # four frames without the plate (tracker: more than 3 missed) end its track
    assert results[8].passages == [PassageRecord("gate", 1001.0, PLATE, "blue", None)]
    assert end == FrameResult([], [])


@pytest.mark.parametrize("frames", [2, 5])
def test_finish_closes_the_passage_of_a_car_still_in_view(frames: int) -> None:
    gatebox = pipeline()
    try:
        results = [gatebox.process(frame(i, car=True)) for i in range(frames)]
        end = gatebox.finish("gate")
    finally:
        gatebox.close()
    assert not any(r.passages for r in results)
    assert end.alerts == [] and end.passages == [PassageRecord("gate", 1001.0, PLATE, "blue", None)]
