"""`Detections`, the one type faces, objects and plates travel in: its arrays stay parallel however it
is built, indexed, filtered or extended (issue 15, item 4)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge.types import Detections


def three() -> Detections:
    """Three plates: boxes, scores, one class, tracked, with a crop and a read text each."""
    return Detections.from_boxes(
        [[0, 0, 10, 10], [20, 0, 40, 10], [50, 5, 80, 25]], [0.9, 0.5, 0.7], class_id=[2, 2, 7],
        data={"crop": np.arange(3 * 2 * 2).reshape(3, 2, 2), "text": ["A1", "B2", "C3"]},
    ).with_tracker_ids([4, 5, 6])  # fmt: skip


@pytest.mark.parametrize(
    ("index", "rows"),
    [
        (1, [1]),
        (np.int64(2), [2]),
        (slice(0, 2), [0, 1]),
        (slice(3, None), []),
        ([2, 0], [2, 0]),
        (np.array([True, False, True]), [0, 2]),
        (np.zeros(3, bool), []),
        (np.array([1], np.int64), [1]),
    ],
)
def test_indexing_picks_the_same_rows_of_every_array(index: Any, rows: list[int]) -> None:
    whole, picked = three(), three()[index]
    assert len(picked) == len(rows)
    assert picked.xyxy.shape == (len(rows), 4) and np.array_equal(picked.xyxy, whole.xyxy[rows])
    assert np.array_equal(picked.confidence, whole.confidence[rows])
    assert np.array_equal(picked.class_id, whole.class_id[rows])
    assert np.array_equal(picked.tracker_id, whole.tracker_id[rows])
    assert picked.data.keys() == {"crop", "text"}
    assert np.array_equal(picked.data["crop"], whole.data["crop"][rows])
    assert list(picked.data["text"]) == [["A1", "B2", "C3"][r] for r in rows]


@pytest.mark.parametrize(
    ("empty", "what"),
    [
        (Detections(), "the default"),
        (Detections.from_boxes([], []), "from no boxes"),
        (Detections.from_boxes(np.empty((0, 4)), np.empty(0), data={"crop": np.empty((0, 36, 136, 3))}), "with data"),
        (three()[np.zeros(3, bool)], "filtered to nothing"),
    ],
)
def test_empty_detections_keep_their_shapes(empty: Detections, what: str) -> None:
    assert len(empty) == 0, what
    assert empty.xyxy.shape == (0, 4) and empty.xyxy.dtype == np.float32
    assert empty.confidence.shape == empty.class_id.shape == empty.tracker_id.shape == (0,)
    assert empty.moved_by(5, 5).xyxy.shape == (0, 4) and len(empty.with_tracker_ids([])) == 0
    assert empty.width.shape == (0,)


def test_from_boxes_defaults_to_no_class_and_untracked() -> None:
    faces = Detections.from_boxes([[1, 2, 3, 4], [5, 6, 9, 8]], [0.5, 1.0])
    assert faces.xyxy.dtype == np.float32 and faces.confidence.dtype == np.float32
    assert faces.class_id.tolist() == [-1, -1] and faces.tracker_id.tolist() == [-1, -1]
    assert faces.width.tolist() == [2.0, 4.0] and faces.data == {}


@pytest.mark.parametrize(
    ("build", "complaint"),
    [
        (lambda: Detections(np.zeros((2, 3), np.float32)), "xyxy must be"),
        (lambda: Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.float32)), "confidence must be"),
        (lambda: Detections.from_boxes([[0, 0, 1, 1]], [1.0], class_id=[1, 2]), "class_id must be"),
        (lambda: three().with_tracker_ids([1, 2]), "tracker_id must be"),
        (lambda: three().with_data({"colour": ["blue"]}), "data['colour'] must have 3 rows"),
        (lambda: Detections.from_boxes([[0, 0, 1, 1]], [1.0], data={"text": "A1"}), "data['text'] must have 1 rows"),
    ],
)
def test_arrays_that_are_not_parallel_are_refused(build: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        build()


def test_with_data_adds_and_replaces_without_touching_the_original() -> None:
    plates = three()
    read = plates.with_data({"text": ["X9", "Y8", "Z7"], "colour": np.array(["blue", None, "green"], dtype=object)})
    assert list(read.data["text"]) == ["X9", "Y8", "Z7"] and list(read.data["colour"]) == ["blue", None, "green"]
    assert list(plates.data["text"]) == ["A1", "B2", "C3"] and "colour" not in plates.data
    assert read[1:].data["colour"].tolist() == [None, "green"]


def test_moved_by_shifts_boxes_only() -> None:
    found = three().moved_by(100, 50)
    assert found.xyxy[0].tolist() == [100, 50, 110, 60]
    assert found.tracker_id.tolist() == [4, 5, 6] and list(found.data["text"]) == ["A1", "B2", "C3"]
