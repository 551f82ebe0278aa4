"""The newest frame of each camera, kept for a snapshot on demand (a panic shows its nearest camera; the
console's camera preview draws on a copy of it)."""

from __future__ import annotations

import threading
import time

from edge.alerts import jpeg_snapshot
from edge.types import Frame

PANIC_SNAPSHOT_MAX_SIDE = 640


class LatestFrames:
    def __init__(self, max_age_s: float = 10.0) -> None:
        self._max_age_s = max_age_s
        self._frames: dict[str, tuple[Frame, float]] = {}  # camera -> (frame, monotonic time it was seen)
        self._lock = threading.Lock()

    def put(self, frame: Frame) -> None:
        """Called for every frame a camera loop takes (a reference is kept, nothing copied)."""
        with self._lock:
            self._frames[frame.camera] = (frame, time.monotonic())

    def frame(self, camera: str) -> Frame | None:
        """The camera's newest frame (not copied: never draw on it); None when the camera is unknown or
        has shown nothing for `max_age_s`."""
        with self._lock:
            seen = self._frames.get(camera)
        if seen is None or time.monotonic() - seen[1] > self._max_age_s:
            return None
        return seen[0]

    def jpeg(self, camera: str) -> tuple[bytes, float] | None:
        """The camera's newest frame as a JPEG, with its capture time; None when the camera is
        unknown or has shown nothing for `max_age_s` (a stale picture would mislead)."""
        frame = self.frame(camera)
        if frame is None:
            return None
        return jpeg_snapshot(frame.image, PANIC_SNAPSHOT_MAX_SIDE, quality=75), frame.ts
