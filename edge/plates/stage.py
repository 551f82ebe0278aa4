"""Plate stage: find and read plates where the scene moved, follow each plate as a track, vote
its reads, and decide one plate event per vehicle pass (then match it against the plate lists)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.config import GateLineConfig, PlatesConfig
from edge.detectors.onnx_objects import OnnxObjectDetector
from edge.detectors.regions import detection_window
from edge.plates.finder import PlateFinder
from edge.plates.matcher import PlateMatch, PlateMatcher
from edge.plates.reader import PlateTextReader
from edge.protocol.messages import Passage
from edge.tracking.iou_tracker import IouTracker
from edge.tracking.line_crossing import Direction, LineCrossing
from edge.types import FaceDetections, Frame

VEHICLES = frozenset({"car", "bus", "truck", "motorcycle"})


@dataclass(frozen=True)
class PassageRecord:
    """One vehicle read at the gate (listed or not), for the centre's access log."""

    camera: str
    ts: float
    plate: str
    colour: str | None
    direction: Direction | None  # across the camera's gate line; None without one

    def message(self, site: str, box_id: str) -> Passage:
        """What the centre gets (`<prefix>/<site>/<box>/passage`)."""
        return Passage(site=site, box_id=box_id, camera=self.camera, ts=self.ts, plate=self.plate, colour=self.colour,
                       direction=self.direction)  # fmt: skip


@dataclass(frozen=True)
class PlateDecision:
    camera: str
    frame_index: int
    ts: float
    track_id: int
    box: tuple[int, int, int, int]
    crop: npt.NDArray[np.uint8]
    text: str  # the voted read
    confidence: float
    reads: int  # reads that agreed
    match: PlateMatch
    colour: str | None = None


class PlateStage:
    def __init__(
        self,
        finder: PlateFinder,
        reader: PlateTextReader,
        matcher: PlateMatcher,
        config: PlatesConfig,
        vehicles: OnnxObjectDetector | None = None,
        gate_line: GateLineConfig | None = None,
    ):
        self._finder = finder
        self._vehicles = vehicles
        self._gate = LineCrossing(gate_line) if gate_line else None
        self._direction: dict[int, Direction] = {}
        self._settled: dict[int, tuple[str, str | None, float]] = {}  # track -> (plate, colour, ts) for passages
        self.passages: list[PassageRecord] = []
        self._reader = reader
        self._matcher = matcher
        self._config = config
        self._tracker = IouTracker(iou_threshold=0.1, max_missed=3)
        self._votes: dict[int, Counter[str]] = defaultdict(Counter)
        self._confidence: dict[int, dict[str, float]] = defaultdict(dict)
        self._decided: set[int] = set()
        self._last_alert_ts: dict[str, float] = {}

    def set_matcher(self, matcher: PlateMatcher) -> None:
        self._matcher = matcher

    def process(self, frame: Frame, moving: npt.NDArray[np.float32]) -> list[PlateDecision]:
        if len(moving) and self._vehicles is not None:  # something moved: look only where the vehicles are
            found = self._vehicles.detect(frame.image)
            moving = found.xyxy[[name in VEHICLES for name in found.class_name]]
        window = detection_window(moving, frame.image.shape, padding=0.05)
        if window is None:
            return []
        x1, y1, x2, y2 = window
        found = self._finder.find(frame.image[y1:y2, x1:x2])
        reads = [(p, self._reader.read_with_colour(p.crop)) for p in found]
        reads = [(p, r) for p, r in reads if r.valid]
        boxes = np.array([[p.box[0] + x1, p.box[1] + y1, p.box[2] + x1, p.box[3] + y1] for p, _ in reads], np.float32)
        tracked = self._tracker.update(
            FaceDetections.from_boxes(boxes.reshape(-1, 4), np.ones(len(reads))), frame.index
        )
        decisions = []
        colours: dict[int, str | None] = {}
        for (plate, read), box, track_id in zip(reads, boxes, tracked.detections.tracker_id.tolist(), strict=True):
            if track_id in self._decided:
                continue
            votes = self._votes[track_id]
            votes[read.text] += 1
            colours[track_id] = read.colour
            self._confidence[track_id][read.text] = max(self._confidence[track_id].get(read.text, 0), read.confidence)
            (leader, count), *_ = votes.most_common(1)
            if count < self._config.min_reads:
                continue
            self._decided.add(track_id)
            self._settled[track_id] = (leader, read.colour, frame.ts)
            match = self._matcher.match(leader)
            if match is None:
                continue  # read and settled, but on no list
            last = self._last_alert_ts.get(match.plate)
            if last is not None and frame.ts - last < self._config.cooldown_s:
                continue
            self._last_alert_ts[match.plate] = frame.ts
            decisions.append(PlateDecision(frame.camera, frame.index, frame.ts, track_id,
                                           tuple(int(v) for v in box), plate.crop, leader,
                                           self._confidence[track_id][leader], count, match,
                                           colours.get(track_id)))  # fmt: skip
        if self._gate:
            self._direction.update(self._gate.update(tracked, frame.image.shape))
        for track_id in tracked.ended:
            self._votes.pop(track_id, None)
            self._confidence.pop(track_id, None)
            self._decided.discard(track_id)
            self._end_passage(frame.camera, track_id)  # the vehicle has gone: its passage is complete
        return decisions

    def flush(self, camera: str) -> None:
        """End of the stream: every vehicle still in view has finished its passage."""
        for track_id in list(self._settled):
            self._end_passage(camera, track_id)

    def _end_passage(self, camera: str, track_id: int) -> None:
        settled = self._settled.pop(track_id, None)
        direction = self._direction.pop(track_id, None)
        if settled and self._config.passages:
            plate, colour, ts = settled
            self.passages.append(PassageRecord(camera, ts, plate, colour, direction))
