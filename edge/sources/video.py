"""Frame sources: recorded files (every frame, in order) and live cameras (reconnecting).

Live streams are opened with open/read timeouts set at construction: without them OpenCV's
FFmpeg backend blocks for 60-90 s on a frozen RTSP/HTTP source before reporting anything. A read
that takes the whole read timeout ends the connection even when it returns a frame (one the decoder
held back), so a frozen stream is lost within `read_timeout_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from pathlib import Path

import cv2

from edge.config import CameraConfig
from edge.health import CameraStatus
from edge.protocol.errors import InputError
from edge.types import Frame

log = logging.getLogger(__name__)


def open_capture(
    url: str, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0, hw_decode: bool = False
) -> cv2.VideoCapture:
    """Open a stream URL, `usb:N`, or a file path, with timeouts where the backend honours them."""
    if url.startswith("usb:"):
        return cv2.VideoCapture(int(url[4:]), cv2.CAP_V4L2)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000),
    ]  # fmt: skip
    if hw_decode:  # FFmpeg falls back to software when no hardware decoder is there
        params += [cv2.CAP_PROP_HW_ACCELERATION, cv2.VIDEO_ACCELERATION_ANY]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


class VideoFile:
    """A recorded file, read frame by frame from `start_frame` up to (not including) `end_frame`.

    Frame timestamps follow the file's clock from `start_ts` (default: now). With `realtime`,
    frames are released at the file's own pace, as a camera would deliver them.
    """

    def __init__(
        self,
        path: Path,
        camera: str = "replay",
        start_frame: int = 0,
        end_frame: int | None = None,
        realtime: bool = False,
    ) -> None:
        if not path.is_file():
            raise InputError(f"video not found: {path}")
        self.path = path
        self.camera = camera
        self._capture = open_capture(str(path))
        if start_frame:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, start_frame)
        ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok or first is None:
            self._capture.release()
            raise InputError(f"cannot decode video {path}: not a video file OpenCV/FFmpeg can read")
        self._first = first
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 25.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        end = min(count, end_frame) if count > 0 and end_frame else (end_frame or (count or None))
        self.start_frame = start_frame
        self.end_frame = end
        self.frame_count = end - start_frame if end else None
        self.realtime = realtime
        self.start_ts = time.time()
        self.started_monotonic: float | None = None  # when frame `start_frame` was released

    def due(self, index: int) -> float:
        """Monotonic time at which a real-time camera would have delivered frame `index`."""
        assert self.started_monotonic is not None
        return self.started_monotonic + (index - self.start_frame) / self.fps

    def frames(self) -> Generator[Frame, None, None]:  # closing it releases the capture
        image, index = self._first, self.start_frame
        self.started_monotonic = time.monotonic()
        try:
            while image is not None and (self.end_frame is None or index < self.end_frame):
                if self.realtime:
                    delay = self.due(index) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield Frame(self.camera, index, self.start_ts + (index - self.start_frame) / self.fps, image)
                ok, image = self._capture.read()
                image = image if ok else None
                index += 1
        finally:
            self._capture.release()


class LiveCamera:
    """A camera that is reopened with exponential backoff whenever it stops delivering frames."""

    def __init__(self, config: CameraConfig, stop: threading.Event, status: CameraStatus | None = None) -> None:
        self.config = config
        self._stop = stop
        self._status = status or CameraStatus(config.name)
        self.connects = 0

    def frames(self) -> Generator[Frame, None, None]:  # closing it releases the capture
        cfg = self.config
        backoff = cfg.reconnect.initial_backoff_s
        index = 0
        replaying = False  # a file camera starting over
        while not self._stop.is_set():
            self._status.alive()
            capture = open_capture(cfg.url, cfg.open_timeout_s, cfg.read_timeout_s, cfg.hw_decode)
            if not capture.isOpened():
                capture.release()
                replaying = False
                self._status.connected = False
                log.warning("camera %s: cannot open stream; retrying in %.1f s", cfg.name, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, cfg.reconnect.max_backoff_s)
                continue
            if not replaying:
                self.connects += 1
                self._status.connected = True
                log.info("camera %s: connected (connection %d)", cfg.name, self.connects)
            replaying = False
            received = 0
            # A file configured as a camera is played at its own frame rate, as a camera would, and
            # loops: its end is not a lost camera.
            is_file = Path(cfg.url).is_file()
            pace = 1.0 / fps if is_file and 0 < (fps := capture.get(cv2.CAP_PROP_FPS)) < 1000 else 0.0
            ran_out = looping = False
            next_due = time.monotonic()
            try:
                while not self._stop.is_set():
                    asked = time.monotonic()
                    ok, image = capture.read()
                    if not ok or image is None:
                        break
                    if not is_file and time.monotonic() - asked >= cfg.read_timeout_s:
                        # The read timed out, yet FFmpeg hands out the frames its decoder still holds, one
                        # per further timeout: a frozen H.264 stream would take (1 + decoder delay) timeouts
                        # to notice. A frame that took the whole timeout to come is the sign: it is lost now.
                        break
                    received += 1
                    backoff = cfg.reconnect.initial_backoff_s
                    if pace:
                        next_due += pace
                        self._stop.wait(max(0.0, next_due - time.monotonic()))
                    yield Frame(cfg.name, index, time.time(), image)
                    index += 1
                ran_out = True  # not closed by the consumer
            finally:
                capture.release()
                looping = ran_out and is_file and received > 0 and not self._stop.is_set()
                if not looping:
                    self._status.connected = False
            if self._stop.is_set():
                return
            if looping:
                log.debug("camera %s: file ended after %d frames; playing it again", cfg.name, received)
                replaying = True  # the same camera going on: no reconnection to count or log
                continue
            log.warning(
                "camera %s: stream lost after %d frames (ended, dropped or silent for %.0f s); "
                "reconnecting in %.1f s",
                cfg.name, received, cfg.read_timeout_s, backoff,
            )  # fmt: skip
            self._stop.wait(backoff)
            backoff = min(backoff * 2, cfg.reconnect.max_backoff_s)
