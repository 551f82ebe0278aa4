"""The latest camera preview of each box's cameras, held in memory for the console's Preview dialog.

A preview is what an installer or operator looks at once, not a record: it is never stored in the
database, and the console forgets the oldest ones beyond `max_previews` or `max_bytes` in all. What a
box sends is bounded and validated (`CameraPreview`) like every other message, and refused when its body
names another box than its topic (a box's login may be stolen; the broker's ACL keeps a box to its own
topic, this keeps a stolen login from showing its picture as another gate's)."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from edge.protocol import topics
from edge.protocol.messages import CameraPreview
from edge.protocol.wire import Refused, load_json

MAX_PREVIEW_MESSAGE_BYTES = 512 * 1024  # the broker's own message limit (config/mosquitto/gatebox.conf)
SLUG = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a site or box in a topic, as a box's config allows them
NO_CAMERA = ""  # the key of a box's answer that names no camera (`no_camera`)


@dataclass(frozen=True)
class HeldPreview:
    """One camera's latest preview (or the box's answer that it has none)."""

    site: str
    box_id: str
    camera: str | None
    status: str
    detail: str | None
    request_id: str | None
    taken_at: float | None  # the box's clock at the frame
    received_at: float  # the centre's clock
    width: int | None
    height: int | None
    summary: tuple[str, ...]
    jpeg: bytes | None

    def view(self) -> dict[str, object]:
        """What the page is told (the image itself is fetched by its own URL)."""
        return {"camera": self.camera, "status": self.status, "detail": self.detail, "request_id": self.request_id,
                "taken_at": self.taken_at, "received_at": self.received_at, "width": self.width,
                "height": self.height, "summary": list(self.summary), "has_image": self.jpeg is not None}  # fmt: skip


class Previews:
    """The latest preview per box and camera, bounded in number and bytes (the oldest go first)."""

    def __init__(self, max_previews: int = 400, max_bytes: int = 64 * 2**20,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._max_previews = max_previews
        self._max_bytes = max_bytes
        self._clock = clock
        self._held: OrderedDict[tuple[str, str, str], HeldPreview] = OrderedDict()  # oldest first
        self._bytes = 0
        self._lock = threading.Lock()

    def ingest(self, topic: str, payload: bytes) -> HeldPreview:
        """Keep a box's preview from `<prefix>/<site>/<box>/preview`. Raises `Refused` (nothing kept) for a
        message that is too large, too deep, invalid, or whose body names another box than its topic."""
        parts = topic.split("/")
        if len(parts) != 4 or parts[3] != topics.PREVIEW:
            raise Refused("bad_topic", f"not a box's preview topic: {topic[:200]!r}")
        _, site, box_id, _ = parts
        if not (SLUG.match(site) and SLUG.match(box_id)):
            raise Refused("bad_topic", f"not a site/box a box can have: {topic[:200]!r}")
        body = load_json(payload, MAX_PREVIEW_MESSAGE_BYTES)
        try:
            preview = CameraPreview.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            raise Refused("invalid", f"{where}: {first['msg'][:100]}") from None
        if (preview.site, preview.box_id) != (site, box_id):
            raise Refused("wrong_box", f"the body says {preview.site}/{preview.box_id}, the topic {site}/{box_id}")
        held = HeldPreview(
            site, box_id, preview.camera, preview.status, preview.detail, preview.request_id, preview.taken_at,
            self._clock(), preview.width, preview.height, tuple(preview.summary),
            base64.b64decode(preview.image_jpeg_b64) if preview.image_jpeg_b64 else None,
        )  # fmt: skip
        key = (site, box_id, preview.camera or NO_CAMERA)
        with self._lock:
            old = self._held.pop(key, None)
            if old is not None:
                self._bytes -= len(old.jpeg or b"")
            if preview.camera is not None:  # a camera answered: an earlier "no camera" is out of date
                gone = self._held.pop((site, box_id, NO_CAMERA), None)
                self._bytes -= len(gone.jpeg or b"") if gone else 0
            self._held[key] = held
            self._bytes += len(held.jpeg or b"")
            while len(self._held) > self._max_previews or self._bytes > self._max_bytes:
                _, dropped = self._held.popitem(last=False)
                self._bytes -= len(dropped.jpeg or b"")
        return held

    def of_box(self, site: str, box_id: str) -> list[HeldPreview]:
        """The box's previews, by camera name (an answer naming no camera first)."""
        with self._lock:
            held = [p for (s, b, _), p in self._held.items() if (s, b) == (site, box_id)]
        return sorted(held, key=lambda p: p.camera or "")

    def image(self, site: str, box_id: str, camera: str) -> HeldPreview | None:
        with self._lock:
            return self._held.get((site, box_id, camera))
