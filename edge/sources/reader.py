"""Decoding off the pipeline's thread, through a bounded queue.

OpenCV decodes without holding the GIL, so a reader thread overlaps decoding with detection.
Live cameras drop the oldest queued frame when the pipeline falls behind (the newest view of
the gate matters; the decoder must never stall on a slow consumer, or the stream's socket
buffer overflows). Replays block instead: every frame of a recording is processed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

from edge.types import Frame

_END = object()


class FrameReader:
    def __init__(self, frames: Iterable[Frame], maxsize: int = 8, drop_oldest: bool = False) -> None:
        self._frames = frames
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        self._drop_oldest = drop_oldest
        self._stop = threading.Event()
        self.dropped = 0  # frames discarded because the consumer was behind (live only)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            if self._drop_oldest and item is not _END:
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
                    continue
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if self._stop.is_set():
                    break
                self._put(frame)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._error = e
        finally:
            self._put(_END)

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is _END:
                if self._error is not None:
                    raise self._error
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
