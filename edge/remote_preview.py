"""The console's camera preview, drawn by a running box: the `preview` command.

The centre asks (a signed `PreviewRequest`: every camera, or one); the box draws each camera's newest
frame the way `gatebox camera preview` does (the gate line, the detection window, the faces found;
`edge.preview`) and sends it as a `CameraPreview` on its own `preview` topic, best effort. The frame is
the one the running pipeline already has (`LatestFrames`): the camera is never opened a second time.
A box without cameras answers `no_camera`; a camera that has shown nothing lately, `no_frame`.

Drawing runs a face detector over a whole frame, so it never runs on the link's dispatch thread: requests
are queued (one pending per camera: repeated clicks while one is drawn become one preview) and drawn
one at a time on the box's `preview` thread.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2

from edge.config import GateboxConfig
from edge.preview import Image, PreviewRenderer
from edge.protocol.messages import CameraPreview, PreviewRequest, PreviewStatus
from edge.protocol.wire import MAX_PREVIEW_IMAGE_BYTES
from edge.types import Frame

if TYPE_CHECKING:
    from edge.box import Box

log = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 1280  # enough to place a gate line by; small enough for one MQTT message
JPEG_QUALITIES = (80, 65, 50, 35)  # tried in turn until the image fits MAX_PREVIEW_IMAGE_BYTES

FrameSource = Callable[[str], Frame | None]  # camera name -> its newest frame (`LatestFrames.frame`)
Send = Callable[[CameraPreview], None]  # `Delivery.send`


def preview_jpeg(image: Image, max_bytes: int = MAX_PREVIEW_IMAGE_BYTES) -> bytes:
    """`image` as a JPEG of at most `max_side` pixels and `max_bytes` bytes: lower quality, then smaller,
    until it fits (a noisy night frame at quality 80 may not)."""
    side = PREVIEW_MAX_SIDE
    while True:
        scale = side / max(image.shape[:2])
        scaled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        for quality in JPEG_QUALITIES:
            ok, jpeg = cv2.imencode(".jpg", scaled, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(jpeg) <= max_bytes:
                return bytes(jpeg.tobytes())
        if side <= 160:
            raise ValueError("the preview does not fit in a message even at 160 px")
        side //= 2


class RemotePreviews:
    """Answers the centre's `preview` commands (register `request` with the box's `CommandChannel`)."""

    def __init__(
        self, config: GateboxConfig, frames: FrameSource, send: Send,
        renderer: Callable[[], PreviewRenderer] | None = None, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        """`frames`: each camera's newest frame; `send`: how a preview leaves (`Delivery.send`);
        `renderer`: makes the detector the previews run (loaded on the first request, on the preview thread)."""
        self._config = config
        self._frames = frames
        self._send = send
        self._make_renderer = renderer or (lambda: PreviewRenderer(config))
        self._renderer: PreviewRenderer | None = None
        self._clock = clock
        self._cameras = {camera.name: camera for camera in config.cameras}
        self._pending: dict[str, PreviewRequest] = {}  # camera -> the latest request for it, in order asked
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, command: PreviewRequest) -> None:
        """On the link's dispatch thread: answer at once what needs no drawing, queue the rest."""
        box = self._config.box
        log.info("preview of %s asked by %s", command.camera or "every camera", command.by or "the centre")
        if not self._cameras:
            self._reply(command, None, "no_camera", f"{box.site}/{box.box_id} has no camera: it relays panic "
                        "buttons only")  # fmt: skip
            return
        if command.camera is not None and command.camera not in self._cameras:
            self._reply(command, command.camera, "unknown_camera",
                        f"no camera {command.camera} on this box (it has {', '.join(self._cameras)})")  # fmt: skip
            return
        with self._lock:
            for camera in [command.camera] if command.camera else list(self._cameras):
                self._pending.pop(camera, None)  # asked again: drawn once, in the order last asked
                self._pending[camera] = command
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="preview", daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._stop.is_set():
                with self._lock:
                    if not self._pending:
                        break
                    camera = next(iter(self._pending))
                    command = self._pending.pop(camera)
                try:
                    self._send(self.draw(command, camera))
                except Exception:  # one preview that fails must not stop the next one
                    log.exception("preview of camera %s failed", camera)

    def draw(self, command: PreviewRequest, camera: str) -> CameraPreview:
        """`camera`'s preview now (on the preview thread): its newest frame drawn on, or why there is none."""
        frame = self._frames(camera)
        if frame is None:
            return self._answer(command, camera, "no_frame", f"camera {camera} has shown no frame lately: is it "
                                "connected? (see the Cameras column)")  # fmt: skip
        try:
            if self._renderer is None:
                self._renderer = self._make_renderer()
            drawn = self._renderer.render([frame.image], camera, self._cameras[camera].gate_line)
            jpeg = preview_jpeg(drawn.image)
        except Exception as e:
            log.exception("preview of camera %s could not be drawn", camera)
            return self._answer(command, camera, "failed", f"could not draw the preview: {e}"[:200])
        height, width = drawn.image.shape[:2]
        summary = [line[:200] for line in drawn.summary()[1:]]  # the first line names the source: the camera
        return self._answer(command, camera, "ok", None, image_jpeg_b64=base64.b64encode(jpeg).decode(),
                            taken_at=frame.ts, width=width, height=height, summary=summary)  # fmt: skip

    def _reply(self, command: PreviewRequest, camera: str | None, status: PreviewStatus, detail: str) -> None:
        self._send(self._answer(command, camera, status, detail))

    def _answer(
        self, command: PreviewRequest, camera: str | None, status: PreviewStatus, detail: str | None,
        **drawn: object,
    ) -> CameraPreview:  # fmt: skip
        box = self._config.box
        return CameraPreview.model_validate({
            "site": box.site, "box_id": box.box_id, "request_id": command.request_id, "camera": camera,
            "status": status, "detail": detail[:200] if detail else None, "ts": self._clock(), **drawn,
        })  # fmt: skip


def serve_previews(box: Box, frames: FrameSource) -> RemotePreviews:
    """The box answers the centre's `preview` commands from `frames` (a running box: `LatestFrames.frame`);
    close the result when the box stops. A box without a link to the centre is never asked."""
    previews = RemotePreviews(box.config, frames, box.delivery.send)
    if box.commands is not None:
        box.commands.register("preview", previews.request)
    return previews
