"""People passages: every person crossing a camera's gate line, counted once.

Two kinds of track see people: face tracks (the camera sees faces) and body tracks (a person
detector, also from behind). Either crossing the line is a crossing of that person. Counting
once per person means three things:

* a track counts at most once, whichever way and however often it crosses;
* a track that breaks and restarts soon after, near where it broke, is the same person (rejoined):
  on the same side it inherits the person; on the other side the person crossed during the gap;
* a face inside a body box is that body's person: a face track and a body track of one person
  merge (union-find), and the person counts once.

So that a merge or a rejoin can still happen after a crossing, a person's passage is only decided
once all their tracks have ended and `rejoin_within_s` has passed (or at the end of the stream).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.config import GateLineConfig, PeoplePassagesConfig
from edge.protocol.messages import Passage
from edge.tracking.iou_tracker import TrackerUpdate
from edge.tracking.line_crossing import Direction, LineCrossing
from edge.types import Frame

Source = Literal["face", "body"]
TrackKey = tuple[Source, int]


@dataclass(frozen=True)
class PersonPassage:
    """One person across the gate line, for the centre's passage log and counts."""

    camera: str
    ts: float  # when the line was crossed
    direction: Direction
    snapshot_jpeg: bytes | None = None  # the best face view, only with `passages.people.snapshots`
    snapshot_expires_at: float | None = None
    passage_id: str = field(default_factory=lambda: f"p-{uuid.uuid4().hex}")
    subject: Literal["person"] = "person"

    def message(self, site: str, box_id: str) -> Passage:
        """What the centre gets (`<prefix>/<site>/<box>/passage`)."""
        snapshot = base64.b64encode(self.snapshot_jpeg).decode() if self.snapshot_jpeg else None
        return Passage(passage_id=self.passage_id, site=site, box_id=box_id, camera=self.camera, ts=self.ts,
                       subject="person", direction=self.direction, snapshot_jpeg_b64=snapshot,
                       snapshot_expires_at=self.snapshot_expires_at if snapshot else None)  # fmt: skip


@dataclass
class _Crossing:
    ts: float
    direction: Direction


@dataclass
class _Ended:
    """A track that ended, for a restarting track to rejoin."""

    person: int
    anchor: npt.NDArray[np.float64]  # bottom centre, as fractions of the frame
    side: float | None
    ts: float


def _anchor(xyxy: npt.NDArray[np.float32], frame_shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    height, width = frame_shape[:2]
    return np.array([(xyxy[0] + xyxy[2]) / 2 / width, xyxy[3] / height], np.float64)


def face_in_body(face: npt.NDArray[np.float32], body: npt.NDArray[np.float32]) -> bool:
    """The face's centre lies inside the body box, in its upper half: that body's face."""
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    return bool(body[0] <= cx <= body[2] and body[1] <= cy <= (body[1] + body[3]) / 2)


class PeopleCounter:
    def __init__(self, line: GateLineConfig, config: PeoplePassagesConfig) -> None:
        self._config = config
        self._lines: dict[Source, LineCrossing] = {"face": LineCrossing(line), "body": LineCrossing(line)}
        self._person: dict[TrackKey, int] = {}  # track -> its person (a union-find node)
        self._parent: dict[int, int] = {}
        self._crossing: dict[int, _Crossing] = {}  # person root -> the crossing that counts
        self._live: dict[TrackKey, tuple[npt.NDArray[np.float32], float | None]] = {}  # box, side when last seen
        self._ended: dict[Source, list[_Ended]] = {"face": [], "body": []}
        self._last_end: dict[int, float] = {}  # person root -> when its last track ended
        self._best_face: dict[int, tuple[float, bytes]] = {}  # person root -> (face area, JPEG)
        self._done: set[int] = set()  # person roots already counted: never again
        self._passages: list[PersonPassage] = []
        self._camera = ""

    # --- union-find over people -----------------------------------------------------------------
    def _root(self, person: int) -> int:
        while self._parent[person] != person:
            self._parent[person] = self._parent[self._parent[person]]
            person = self._parent[person]
        return person

    def _new_person(self) -> int:
        person = len(self._parent)
        self._parent[person] = person
        return person

    def _merge(self, a: int, b: int) -> int:
        a, b = self._root(a), self._root(b)
        if a == b:
            return a
        self._parent[b] = a
        crossings = [c for c in (self._crossing.pop(a, None), self._crossing.pop(b, None)) if c]
        if a in self._done or b in self._done:
            self._done.add(a)  # counted already: what the other track saw does not count again
        elif crossings:
            self._crossing[a] = min(crossings, key=lambda c: c.ts)  # the person's first crossing counts
        faces = [f for f in (self._best_face.pop(a, None), self._best_face.pop(b, None)) if f]
        if faces:
            self._best_face[a] = max(faces, key=lambda f: f[0])
        ends = [self._last_end.pop(p) for p in (a, b) if p in self._last_end]
        if ends:
            self._last_end[a] = max(ends)
        return a

    # --- what the tracks saw --------------------------------------------------------------------
    def update(self, source: Source, frame: Frame, tracked: TrackerUpdate,
               face_views: dict[int, bytes] | None = None) -> None:  # fmt: skip
        """One tracker update of `source` on `frame`; `face_views`: JPEG face crops by face track
        (with snapshots on), the largest of a person's is kept."""
        self._camera = frame.camera
        shape = frame.image.shape
        line = self._lines[source]
        boxes = tracked.detections.xyxy
        ids = tracked.detections.tracker_id.tolist()
        for box, track_id in zip(boxes, ids, strict=True):
            key: TrackKey = (source, track_id)
            side = line.side(box, shape)
            if key not in self._person:
                rejoined = self._rejoined(source, box, side, frame)
                self._person[key] = self._new_person() if rejoined is None else rejoined
            self._live[key] = (box, side)
        for track_id, way in line.update(tracked, shape).items():
            self._cross(self._person[(source, track_id)], frame.ts, way)
        for track_id, jpeg in (face_views or {}).items():
            root = self._root(self._person[("face", track_id)])
            box = self._live[("face", track_id)][0]
            area = float((box[2] - box[0]) * (box[3] - box[1]))
            if area > self._best_face.get(root, (0.0, b""))[0]:
                self._best_face[root] = (area, jpeg)
        self._associate_faces_with_bodies()
        for track_id in tracked.ended:
            self._end((source, track_id), frame)
        self._decide(frame.ts)

    def _rejoined(self, source: Source, box: npt.NDArray[np.float32], side: float | None, frame: Frame) -> int | None:
        """The person a new track continues: a track of the same source that ended within
        `rejoin_within_s`, within `rejoin_distance` of here. On the other side of the line, the
        person crossed while unseen: that crossing counts (if the person had none)."""
        ended = self._ended[source]
        ended[:] = [e for e in ended if frame.ts - e.ts <= self._config.rejoin_within_s]
        anchor = _anchor(box, frame.image.shape)
        near = [e for e in ended if float(np.hypot(*(e.anchor - anchor))) <= self._config.rejoin_distance]
        if not near:
            return None
        best = min(near, key=lambda e: float(np.hypot(*(e.anchor - anchor))))
        ended.remove(best)
        root = self._root(best.person)
        if side is not None and best.side is not None and side != best.side:
            self._cross(root, frame.ts, "out" if side > 0 else "in")
        return root

    def _cross(self, person: int, ts: float, way: Direction) -> None:
        root = self._root(person)
        if root not in self._done:
            self._crossing.setdefault(root, _Crossing(ts, way))  # once per person: the first crossing

    def _associate_faces_with_bodies(self) -> None:
        bodies = [(key, box) for key, (box, _) in self._live.items() if key[0] == "body"]
        if not bodies:
            return
        for key, (face, _) in list(self._live.items()):
            if key[0] != "face":
                continue
            for body_key, body in bodies:
                if face_in_body(face, body):
                    self._person[key] = self._person[body_key] = self._merge(self._person[body_key], self._person[key])
                    break

    def _end(self, key: TrackKey, frame: Frame) -> None:
        box_side = self._live.pop(key, None)
        person = self._person.pop(key, None)
        if person is None:
            return
        root = self._root(person)
        self._last_end[root] = frame.ts
        if box_side is not None:
            box, side = box_side
            self._ended[key[0]].append(_Ended(root, _anchor(box, frame.image.shape), side, frame.ts))

    def _decide(self, now: float, flush: bool = False) -> None:
        """A person with a crossing, no live track and past the rejoin window is a passage."""
        live = {self._root(p) for p in self._person.values()}  # only live tracks have a person
        for root in list(self._crossing):
            root_now = self._root(root)
            if root_now in live:
                continue
            if not flush and now - self._last_end.get(root_now, now) <= self._config.rejoin_within_s:
                continue
            crossing = self._crossing.pop(root)
            face = self._best_face.pop(root_now, None)
            snapshot = face[1] if face and self._config.snapshots else None
            expires = crossing.ts + self._config.snapshot_retention_days * 86400 if snapshot else None
            self._passages.append(PersonPassage(self._camera, crossing.ts, crossing.direction, snapshot, expires))
            self._done.add(root_now)  # its tracks may still rejoin, but the person never counts again

    def end_all(self, frame: Frame) -> None:
        """Every track ended at once (a scene cut)."""
        for key in list(self._live):
            self._end(key, frame)

    def take_passages(self) -> list[PersonPassage]:
        passages, self._passages = self._passages, []
        return passages

    def flush(self) -> None:
        """End of the stream: everyone who crossed has passed."""
        self._live.clear()
        self._person.clear()
        self._decide(0.0, flush=True)
