"""An `elder_leaving` alert shows the crossing, not the recognition (issue 17, the tester): its frame,
time, face box and snapshot are those of the frame in which the elder's track crossed the gate line,
whether the elder was recognised long before the line or only after it. In process: the whole camera
pipeline (tracker, sampler, line crossing, decision, alert building) over synthetic tracks, with the
detector, embedder and landmarks replaced by stand-ins that find the one drawn face and say whether
it is the elder's."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pytest

from edge.alerts import face_snapshot
from edge.config import GateboxConfig, GateLineConfig
from edge.pipeline import CameraPipeline, Models
from edge.protocol.alert import Alert
from edge.protocol.embedding import DLIB_EMBEDDER
from edge.recognition.gallery import Gallery
from edge.recognition.sampler import crop_face
from edge.types import Frame
from tests.support.synthetic_faces import ENROLLED, FACE, HEIGHT, WIDTH, BlueFace, Recognised, image

FPS = 25.0
START_TS = 1_800_000_000.0
LINE_Y = 0.5  # the gate line across the middle of the frame; the outside is below it


@dataclass(frozen=True)
class Walk:
    """One person walking straight down (or up) the frame past the line."""

    first_y: float  # the face's top in frame 0
    step: float  # pixels per frame (down: towards the outside)
    recognisable_from: int | None  # the first frame the face is the elder's (None: never)
    frames: int = 100

    def top(self, frame: int) -> int:
        """The face's top in `frame`, in whole pixels as drawn."""
        return round(self.first_y + self.step * frame)

    def crossing_frame(self) -> int | None:
        """The first frame whose face bottom is past the line by the margin (2 % of the height)."""
        margin = GateLineConfig(start=(0, 0), end=(1, 0), outside=(0, 1)).margin * HEIGHT
        inside = self.top(0) + FACE < LINE_Y * HEIGHT
        for frame in range(self.frames):
            bottom = self.top(frame) + FACE
            if (bottom > LINE_Y * HEIGHT + margin) if inside else (bottom < LINE_Y * HEIGHT - margin):
                return frame if inside else None  # walking up and in: a crossing, but not a leaving
        return None


def replay(walk: Walk) -> list[tuple[int, Alert]]:
    """(frame being processed, alert) for every alert the pipeline raised over the walk."""
    config = GateboxConfig.model_validate({
        "lists": {"at_risk_elders": "leaving-only"},
        "motion": {"enabled": False},
        "detector": {"every_n_frames": 1},
        "recognition": {"embedding_workers": 0},
    })  # fmt: skip
    line = GateLineConfig(start=(0.0, LINE_Y), end=(1.0, LINE_Y), outside=(0.5, 1.0))
    embedder = Recognised()
    gallery = Gallery(ENROLLED[None, :], ("at_risk_elders",), ("elder-0042",), ("v3",), DLIB_EMBEDDER)
    pipeline = CameraPipeline(config, Models(BlueFace(), embedder), gallery, line)  # type: ignore[arg-type]
    raised = []
    try:
        for index in range(walk.frames):
            embedder.recognisable = walk.recognisable_from is not None and index >= walk.recognisable_from
            frame = Frame("gate", index, START_TS + index / FPS, image(walk.top(index)))
            raised += [(index, alert) for alert in pipeline.process(frame).alerts]
        raised += [(walk.frames, alert) for alert in pipeline.finish("gate").alerts]
    finally:
        pipeline.close()
    return raised


@pytest.mark.parametrize(
    ("walk", "alerts"),
    [
        (Walk(first_y=60, step=2.5, recognisable_from=0), 1),  # recognised at once, crosses some 60 frames later
        (Walk(first_y=60, step=2.5, recognisable_from=80), 1),  # crosses first, recognised well past the line
        (Walk(first_y=120, step=1.5, recognisable_from=30), 1),  # recognised a few frames before the crossing
        (Walk(first_y=330, step=-2.5, recognisable_from=0), 0),  # walks in: never a leaving
        (Walk(first_y=30, step=0.5, recognisable_from=0), 0),  # recognised, but never reaches the line
        (Walk(first_y=60, step=2.5, recognisable_from=None), 0),  # crosses, never recognised
    ],
)
def test_an_elder_leaving_alert_shows_the_crossing(walk: Walk, alerts: int) -> None:
    raised = replay(walk)
    assert len(raised) == alerts, [(f, a.kind, a.frame) for f, a in raised]
    if not alerts:
        return
    ((raised_at, alert),) = raised
    crossing = walk.crossing_frame()
    assert crossing is not None
    assert (alert.kind, alert.list, alert.subject_id, alert.list_version) == (
        "elder_leaving", "at_risk_elders", "elder-0042", "v3")  # fmt: skip
    assert alert.frame == crossing
    assert alert.ts == datetime.fromtimestamp(START_TS + crossing / FPS, tz=timezone.utc)
    x1, y1, x2, y2 = alert.bbox
    top = walk.top(crossing)
    assert (x1, x2, y2 - y1) == ((WIDTH - FACE) // 2, (WIDTH + FACE) // 2, FACE)
    assert y1 == top and y2 > LINE_Y * HEIGHT  # the face as it crossed: past the line
    at_line, _ = crop_face(image(top), np.array(alert.bbox, np.float32))
    assert base64.b64decode(alert.snapshot_jpeg_b64) == face_snapshot(at_line)
    # Raised as soon as both are known: at the crossing when recognised before, else at the recognition.
    assert raised_at >= max(crossing, walk.recognisable_from or 0)
    assert raised_at - max(crossing, walk.recognisable_from or 0) <= FPS / 2  # within a look of the sampler
