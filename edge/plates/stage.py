"""Plate stage: find and read plates where the scene moved, follow each plate as a track, vote
its reads, and decide one plate event per vehicle pass (then match it against the plate lists)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.config import GateLineConfig, PlatesConfig
from edge.detectors.onnx_objects import CLASS_NAME, OnnxObjectDetector
from edge.detectors.regions import detection_window
from edge.plates.finder import CROP, PlateFinder
from edge.plates.matcher import PlateMatch, PlateMatcher
from edge.plates.reader import PlateTextReader
from edge.plates.scanner import COLOUR, READ_CONFIDENCE, TEXT, PlateScanner
from edge.protocol.messages import Passage
from edge.tracking.iou_tracker import IouTracker
from edge.tracking.line_crossing import Direction, LineCrossing
from edge.types import Detections, Frame

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


@dataclass(frozen=True)
class _Settled:
    """A vehicle's plate once its reads agreed; it becomes a passage record when the vehicle has gone."""

    plate: str
    colour: str | None
    ts: float


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
        self._scanner = PlateScanner(finder, reader)
        self._vehicles = vehicles
        self._gate = LineCrossing(gate_line) if gate_line else None
        self._direction: dict[int, Direction] = {}
        self._settled: dict[int, _Settled] = {}  # track -> its voted plate, for the passage log
        self._passages: list[PassageRecord] = []
        self._matcher = matcher
        self._config = config
        self._tracker = IouTracker(iou_threshold=0.1, max_missed=3)
        self._votes: dict[int, Counter[str]] = defaultdict(Counter)
        self._confidence: dict[int, dict[str, float]] = defaultdict(dict)
        self._decided: set[int] = set()
        self._last_alert_ts: dict[str, float] = {}
        self.last_read = Detections()  # the plates read in the last frame processed (for drawing)

    def set_matcher(self, matcher: PlateMatcher) -> None:
        self._matcher = matcher

    def process(self, frame: Frame, moving: npt.NDArray[np.float32]) -> list[PlateDecision]:
        if len(moving) and self._vehicles is not None:  # something moved: look only where the vehicles are
            found = self._vehicles.detect(frame.image)
            moving = found.xyxy[np.isin(found.data[CLASS_NAME], sorted(VEHICLES))]
        window = detection_window(moving, frame.image.shape, padding=0.05)
        self.last_read = Detections()
        if window is None:
            return []
        x1, y1, x2, y2 = window
        plates = self._scanner.scan(frame.image[y1:y2, x1:x2]).moved_by(x1, y1)
        tracked = self._tracker.update(plates, frame.index)
        plates = self.last_read = tracked.detections
        decisions = []
        for i, track_id in enumerate(plates.tracker_id.tolist()):
            if track_id in self._decided:
                continue
            text, colour = str(plates.data[TEXT][i]), plates.data[COLOUR][i]
            votes = self._votes[track_id]
            votes[text] += 1
            confidence = self._confidence[track_id]
            confidence[text] = max(confidence.get(text, 0), float(plates.data[READ_CONFIDENCE][i]))
            (leader, count), *_ = votes.most_common(1)
            if count < self._config.min_reads:
                continue
            self._decided.add(track_id)
            self._settled[track_id] = _Settled(leader, colour, frame.ts)
            match = self._matcher.match(leader)
            if match is None:
                continue  # read and settled, but on no list
            last = self._last_alert_ts.get(match.plate)
            if last is not None and frame.ts - last < self._config.cooldown_s:
                continue
            self._last_alert_ts[match.plate] = frame.ts
            left, top, right, bottom = (int(v) for v in plates.xyxy[i])
            decisions.append(PlateDecision(frame.camera, frame.index, frame.ts, track_id, (left, top, right, bottom),
                                           plates.data[CROP][i], leader, confidence[leader], count, match,
                                           colour))  # fmt: skip
        if self._gate:
            self._direction.update(self._gate.update(tracked, frame.image.shape))
        for track_id in tracked.ended:
            self._votes.pop(track_id, None)
            self._confidence.pop(track_id, None)
            self._decided.discard(track_id)
            self._end_passage(frame.camera, track_id)  # the vehicle has gone: its passage is complete
        return decisions

    def take_passages(self) -> list[PassageRecord]:
        """Vehicles whose pass ended since the last call (with `plates.passages` on)."""
        passages, self._passages = self._passages, []
        return passages

    def flush(self, camera: str) -> None:
        """End of the stream: every vehicle still in view has finished its passage."""
        for track_id in list(self._settled):
            self._end_passage(camera, track_id)

    def _end_passage(self, camera: str, track_id: int) -> None:
        settled = self._settled.pop(track_id, None)
        direction = self._direction.pop(track_id, None)
        if settled and self._config.passages:
            self._passages.append(PassageRecord(camera, settled.ts, settled.plate, settled.colour, direction))
