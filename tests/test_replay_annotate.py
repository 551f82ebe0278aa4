"""`replay --annotate OUT.mp4` (issue 17, the tester): the crowd clip with two people enrolled is written
back with the alerts drawn where they were raised, frame for frame, and drawing changes nothing the
pipeline decides."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge.annotate import ALERT_HOLD_S
from tests.conftest import run_cli, write_config
from tests.support.enrolled import EnrolledData

CAMERA = "crowd_toward_camera"
GATE_LINE: dict[str, Any] = {"start": [0.0, 0.9], "end": [1.0, 0.9], "outside": [0.5, 1.0], "margin": 0.03}


@dataclass(frozen=True)
class Runs:
    plain: list[dict]  # the events of a replay without --annotate
    annotated: list[dict]  # and with it
    video: Path
    fps: float


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, crowd_clip: Path, enrolled_data: EnrolledData) -> Runs:
    work = tmp_path_factory.mktemp("annotate")
    config = write_config(work / "gatebox.yaml", box={"site": "s1", "box_id": "annotate"},
                          cameras=[{"name": CAMERA, "url": str(crowd_clip), "gate_line": GATE_LINE}])  # fmt: skip
    found: dict[str, list[dict]] = {}
    runs: tuple[tuple[str, list[str | Path]], ...] = (("plain", []), ("annotated", ["--annotate", work / "out.mp4"]))
    for name, extra in runs:
        data = enrolled_data.copy(work / f"box-{name}")
        result = run_cli("--config", config, "--data-dir", data, "replay", crowd_clip, "--no-publish",
                         "--camera", CAMERA, "--events", work / f"{name}.jsonl", *extra)  # fmt: skip
        assert result.returncode == 0, result.stderr
        found[name] = _events(work / f"{name}.jsonl")
    fps = cv2.VideoCapture(str(crowd_clip)).get(cv2.CAP_PROP_FPS)
    return Runs(found["plain"], found["annotated"], work / "out.mp4", fps)


def _frames(path: Path) -> list[npt.NDArray[np.uint8]]:
    capture = cv2.VideoCapture(str(path))
    frames: list[npt.NDArray[np.uint8]] = []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(image)


def _red_near(image: npt.NDArray[np.uint8], bbox: list[int]) -> int:
    """Strongly red pixels within a box's width around the box (the drawn box follows the face from where
    the alert was decided)."""
    x1, y1, x2, y2 = bbox
    pad = x2 - x1
    pixels = image[max(y1 - pad, 0) : y2 + pad, max(x1 - pad, 0) : x2 + pad].reshape(-1, 3).astype(int)
    return int(((pixels[:, 2] > 170) & (pixels[:, 1] < 90) & (pixels[:, 0] < 90)).sum())


def test_drawing_changes_no_alert(runs: Runs) -> None:
    def decided(events: list[dict]) -> list[tuple]:
        return sorted((e["kind"], e["list"], e["subject_id"], e["frame"], e["track_id"], tuple(e["bbox"]),
                       e["score"], e["matching_frames"]) for e in events)  # fmt: skip

    assert len(runs.plain) == 2
    assert decided(runs.annotated) == decided(runs.plain)


def test_the_annotated_clip_has_every_frame(runs: Runs, crowd_clip: Path) -> None:
    assert len(_frames(runs.video)) == len(_frames(crowd_clip)) == 105


def test_each_alert_is_drawn_where_it_was_raised(runs: Runs, crowd_clip: Path) -> None:
    drawn, original = _frames(runs.video), _frames(crowd_clip)
    hold = round(ALERT_HOLD_S * runs.fps)
    for event in runs.annotated:
        frame, bbox = event["frame"], event["bbox"]
        # Raised once its evidence was in (embeddings lag a few frames): drawn from then on, for the hold.
        outline = 2 * (bbox[2] - bbox[0] + bbox[3] - bbox[1])  # pixels in a 1 px outline of the box
        added = [_red_near(drawn[i], bbox) - _red_near(original[i], bbox) for i in range(len(drawn))]
        # A box at least 2 px thick, drawn within a couple of seconds of the decided frame: the red is the
        # drawing, not the clip; and none before it was decided.
        assert max(added[frame : frame + hold]) > 2 * outline, (event["subject_id"], added)
        assert max(added[:frame], default=0) < outline // 4, (event["subject_id"], added)
        raised = int(np.argmax(added[frame : frame + hold])) + frame
        banner = drawn[raised][:10, :, :].reshape(-1, 3).astype(int)  # the banner across the top
        assert ((banner[:, 2] > 170) & (banner[:, 1] < 90)).mean() > 0.5


def test_the_gate_line_is_drawn(runs: Runs) -> None:
    first = _frames(runs.video)[0]
    y = round(first.shape[0] * GATE_LINE["start"][1])
    row = first[y - 1 : y + 2, :, :].reshape(-1, 3).astype(int)
    yellow = (row[:, 2] > 170) & (row[:, 1] > 170) & (row[:, 0] < 100)
    assert yellow.mean() > 0.5
