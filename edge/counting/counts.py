"""How many people and vehicles each camera saw pass since the box started, for the heartbeat."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Protocol

from edge.protocol.messages import Passage, PassageCounts

MAX_CAMERAS = 64  # the heartbeat's bound on cameras


class PassageLike(Protocol):
    """A passage record of any subject (`PersonPassage`, the plate stage's `PassageRecord`)."""

    def message(self, site: str, box_id: str) -> Passage: ...


class PassageTally:
    """Counted by every camera's thread as passages are sent; read by the heartbeat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def add(self, passages: Iterable[Passage]) -> None:
        with self._lock:
            for passage in passages:
                if passage.camera in self._counts or len(self._counts) < MAX_CAMERAS:
                    self._counts[passage.camera][f"{passage.subject}_{passage.direction or 'unknown'}"] += 1

    def report(self) -> dict[str, PassageCounts]:
        with self._lock:
            return {camera: PassageCounts(**{k: v for k, v in counts.items() if k in PassageCounts.model_fields})
                    for camera, counts in self._counts.items()}  # fmt: skip
