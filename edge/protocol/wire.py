"""Bounds on what comes off the wire: a message is measured and its nesting counted before it is
parsed, numbers outside what JSON, SQLite and the page can hold are refused, and a refusal is
counted and logged without letting one sender flood the log. The constrained types every message
(and both programs' configs) are built from live here: ids, counts, versions, bounded text.

A box's login may be stolen (a box sits in a gate cabinet): nothing it sends may crash, overflow
or rewrite the receiver. Every receiver parses through `load_json` and a pydantic model built from
the bounded types here."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from edge.protocol.bounded_json import JsonRefused, parse_bounded_json

DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024  # an alert's face is a few kB; a panic's camera view ≤ ~330 kB as base64
MAX_DEPTH = 10  # the deepest honest message (a heartbeat) nests 3 levels
MAX_SAFE_INT = 2**53  # exact in JavaScript and in a float, far inside SQLite's int64
MAX_ALERT_SNAPSHOT_BYTES = 96 * 1024  # a ≤200 px JPEG: ~31 kB even for pure noise
MAX_PANIC_SNAPSHOT_BYTES = 320 * 1024  # a ≤640 px JPEG at quality 75: ~250 kB even for pure noise
# A camera preview: as base64 in its JSON it stays under the broker's 512 kB message limit.
MAX_PREVIEW_IMAGE_BYTES = 320 * 1024

# A site, box, list, camera or device name: part of topics, file names and SQL keys.
Slug = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
EventId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Timestamp = Annotated[float, Field(ge=0, le=2**34, allow_inf_nan=False, description="Seconds since the epoch.")]
Count = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Version = Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
Seconds = Annotated[float, Field(ge=0, le=100 * 365 * 86400, allow_inf_nan=False)]
ShortText = Annotated[str, Field(max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Counts = Annotated[dict[Name, Count], Field(max_length=64)]


class Refused(ValueError):
    """A message refused before anything used it; `reason` is what the counters say."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _base64_checker(max_bytes: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        try:
            if len(text) % 4:  # b64decode ignores what follows the padding
                raise ValueError
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not valid base64") from None
        if len(data) > max_bytes:
            raise ValueError(f"larger than {max_bytes} bytes")
        return text

    return check


# Base64 text (a JPEG) that decodes, to at most so many bytes.
AlertSnapshot = Annotated[
    str,
    Field(max_length=MAX_ALERT_SNAPSHOT_BYTES * 4 // 3 + 4),
    AfterValidator(_base64_checker(MAX_ALERT_SNAPSHOT_BYTES)),
]
PanicSnapshot = Annotated[
    str,
    Field(max_length=MAX_PANIC_SNAPSHOT_BYTES * 4 // 3 + 4),
    AfterValidator(_base64_checker(MAX_PANIC_SNAPSHOT_BYTES)),
]
PreviewImage = Annotated[
    str,
    Field(max_length=MAX_PREVIEW_IMAGE_BYTES * 4 // 3 + 4),
    AfterValidator(_base64_checker(MAX_PREVIEW_IMAGE_BYTES)),
]


# What `edge.protocol.bounded_json` calls a refusal, as the centre's counters name it.
_REASONS = {"oversized": "too_large", "too_deep": "too_deep", "malformed": "not_json"}


def load_json(payload: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """One JSON object from the wire, size and nesting checked before it is parsed (the same bounds
    as the box's inbound messages: `edge.protocol.bounded_json`); raises Refused."""
    try:
        body = parse_bounded_json(payload, max_bytes, max_depth)
    except JsonRefused as e:
        raise Refused(_REASONS[e.reason], str(e)) from None
    if not isinstance(body, dict):
        raise Refused("not_json", f"expected a JSON object, got {type(body).__name__}")
    return body


class Refusals:
    """Counts refusals per kind and reports the first of each kind, then at most one line per kind
    every `every_s` with how many went unreported: a hostile sender can't flood the log, and no
    refusal is silent. Reports go to `logger`, or to `say` (a terminal's warning lines)."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.counts: Counter[str] = Counter()
        self._log = logger or logging.getLogger(__name__)
        self._say = say
        self._every_s = every_s
        self._clock = clock
        self._next_report: dict[str, float] = {}
        self._unreported: Counter[str] = Counter()
        self._lock = threading.Lock()  # receivers may report from several threads

    def note(self, kind: str, detail: str, level: int = logging.WARNING, exc_info: bool = False) -> None:
        with self._lock:
            self.counts[kind] += 1
            now = self._clock()
            if now < self._next_report.get(kind, -math.inf):
                self._unreported[kind] += 1
                return
            self._next_report[kind] = now + self._every_s
            also = self._unreported.pop(kind, 0)
        line = f"{detail[:300]}{f' (and {also} more like it since the last report)' if also else ''} [{kind}]"
        if self._say:
            self._say(line)
        else:
            self._log.log(level, "%s", line, exc_info=exc_info)
