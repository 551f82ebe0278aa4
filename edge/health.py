"""Box health: per-camera status, the heartbeat the centre watches, and the systemd watchdog."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from edge.panic.supervision import ReceiverStatus
from edge.protocol.messages import CameraReport, Heartbeat, ListReport, OutboxReport
from edge.store.lists import ListStore

if TYPE_CHECKING:
    from edge.box import Box

log = logging.getLogger(__name__)


def software_version() -> str:
    try:
        return version("gatebox")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class CameraStatus:
    """Updated by a camera's loop, read by the heartbeat and the watchdog."""

    name: str
    connected: bool = False
    frames: int = 0
    dropped: int = 0
    last_progress: float = field(default_factory=time.monotonic)  # a frame processed, or a reconnect attempt
    _window: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def frame_done(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames += 1
            self.last_progress = now
            self._window.append(now)
            if len(self._window) > 256:
                del self._window[:128]

    def alive(self) -> None:
        self.last_progress = time.monotonic()

    def fps(self, over_s: float = 10.0) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._window if now - t <= over_s]
        return len(recent) / over_s

    def report(self) -> CameraReport:
        return CameraReport(connected=self.connected, fps=round(self.fps(), 1), frames=self.frames,
                            dropped=self.dropped)  # fmt: skip


class Watchdog:
    """systemd's `Type=notify` + `WatchdogSec=`: READY once started, then WATCHDOG=1 only while
    every camera loop shows progress, so a hung pipeline is restarted rather than pinged for."""

    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET")
        self._address = ("\0" + address[1:]) if address and address.startswith("@") else address
        usec = os.environ.get("WATCHDOG_USEC")
        self.interval_s = int(usec) / 1e6 / 2 if usec and usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as e:
            log.warning("systemd notify failed: %s", e)

    def ping_if_healthy(self, cameras: list[CameraStatus], stale_after_s: float) -> bool:
        now = time.monotonic()
        stuck = [c.name for c in cameras if now - c.last_progress > stale_after_s]
        if stuck:
            log.error(
                "no progress on camera(s) %s for %.0f s: not pinging the watchdog", ", ".join(stuck), stale_after_s
            )
            return False
        self.notify("WATCHDOG=1")
        return True


def heartbeat(
    box: Box,
    cameras: list[CameraStatus],
    started: float,
    panic_rejected: Counter[str] | None = None,
    panic_receivers: Sequence[ReceiverStatus] = (),
) -> Heartbeat:
    """What the box reports every `link.heartbeat_interval_s`; `started`: the box's start (monotonic clock)."""
    config, stats = box.config, box.outbox.stats()
    oldest = stats.oldest_unconfirmed_age_s
    return Heartbeat(
        site=config.box.site, box_id=config.box.box_id, ts=time.time(), version=software_version(),
        uptime_s=round(time.monotonic() - started, 1),
        cameras={c.name: c.report() for c in cameras},
        outbox=OutboxReport(depth=stats.depth, bytes=stats.bytes, dropped=stats.dropped,
                            oldest_unconfirmed_age_s=None if oldest is None else round(oldest, 1)),
        lists=list_report(box),
        bad_input=dict(box.link.bad_input) if box.link else {},
        panic_rejected=dict(panic_rejected or {}),
        panic_receivers={r.name: r.report() for r in panic_receivers},
        passages=box.passage_counts.report(),
    )  # fmt: skip


def list_report(box: Box) -> dict[str, ListReport | dict[str, int]]:
    """Lists for the heartbeat: version and subjects per configured list, and refused updates (`rejected`)."""
    with closing(ListStore(box.data_dir)) as store:
        versions = store.versions()
        subjects = Counter(s.list_name for s in store.subjects())
    report: dict[str, ListReport | dict[str, int]] = {
        name: ListReport(version=versions.get(name), subjects=subjects.get(name, 0)) for name in box.config.lists
    }
    if box.list_sync and box.list_sync.rejected:
        report["rejected"] = dict(box.list_sync.rejected)
    return report
