"""The panic path: every receiver's signals become panic events relayed to the centre first.

A press is accepted only for a registered device; it is on disk in the outbox, at the top
priority, before `submit` returns. Presses of one device within the coalescing window update the
same event (same `event_id`, new `sequence`, higher `presses`); a long press there makes it a
`long_press` event from then on, and a cancel updates it as `cancel`; with nothing open, each opens an
event of its own. Devices that report heartbeats and fall silent, or report a low battery, raise
low-priority device notices.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypedDict

from edge.comms.delivery import Delivery
from edge.config import GateboxConfig, PanicDevice
from edge.panic.models import ButtonSignal, SignalKind
from edge.protocol.alert import Location
from edge.protocol.panic import DeviceNotice, DeviceNoticeKind, PanicEvent, PanicKind
from edge.protocol.wire import Refusals
from edge.store.alert_states import AlertStates

log = logging.getLogger(__name__)


@dataclass
class _OpenEvent:
    event_id: str
    started: float  # monotonic
    first_pressed_at: float
    presses: int = 1
    sequence: int = 1
    long_press: bool = False  # once held down, the event stays a long press (a later short press never lowers it)


# The panic each signal that starts an event of its own sends (a heartbeat never does).
EVENT_KIND: dict[SignalKind, PanicKind] = {"press": "panic", "long_press": "long_press", "cancel": "cancel"}


class _Snapshot(TypedDict, total=False):
    """A PanicEvent's snapshot fields: both or, with no snapshot, neither (the model's defaults)."""

    snapshot_jpeg_b64: str
    snapshot_ts: datetime


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class PanicService:
    def __init__(self, config: GateboxConfig, delivery: Delivery, records: AlertStates,
                 camera_snapshot: Callable[[str], tuple[bytes, float] | None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """Panics and device notices leave through `delivery`; each panic is recorded in `records` (`gatebox
        alerts`). `camera_snapshot(camera)`: a JPEG of that camera's current view and its capture time, if any.
        `clock`: monotonic seconds for the coalescing window and device silence (tests pass their own)."""
        self._clock = clock
        self._config = config
        self._delivery = delivery
        self._records = records
        self._camera_snapshot = camera_snapshot
        self._devices: dict[str, PanicDevice] = {d.device_id: d for d in config.panic.devices}
        self._open: dict[str, _OpenEvent] = {}
        self._last_seen: dict[str, float] = dict.fromkeys(self._devices, self._clock())
        self._reported: set[tuple[str, str]] = set()  # (device, notice kind) already raised
        self._lock = threading.Lock()
        # Refused input is counted (heartbeat `panic_rejected`) and logged at most once a minute per
        # reason: whoever floods a receiver must not flood the log.
        self._refusals = Refusals(log)
        box = config.box
        self._location = Location(site_name=box.site_name, gate=box.gate, lat=box.lat, lon=box.lon,
                                  grid_cell=box.grid_cell)  # fmt: skip

    @property
    def rejected(self) -> Counter[str]:
        return self._refusals.counts

    def reject(self, reason: str, detail: str) -> None:
        """Receivers report input they refused here (from their own threads)."""
        self._refusals.note(reason, f"panic receiver refused input: {detail[:200]}")

    def submit(self, signal: ButtonSignal) -> bool:
        """Accept a signal; True once any resulting panic is durably queued."""
        device = self._devices.get(signal.device_id)
        if device is None:
            self.reject("unknown_device", f"{signal.source}: device {signal.device_id!r} is not registered")
            return False
        with self._lock:
            self._last_seen[device.device_id] = self._clock()
            self._reported.discard((device.device_id, "device_offline"))
            if signal.battery is not None:
                self._check_battery(device, signal.battery)
            if signal.kind == "heartbeat":
                return True
            self._panic(device, signal)
        return True

    def _panic(self, device: PanicDevice, signal: ButtonSignal) -> None:
        now = self._clock()
        current = self._open.get(device.device_id)
        if current and now - current.started > self._config.panic.coalesce_window_s:
            current = None
        kind: PanicKind
        if signal.kind in ("press", "long_press") and current:  # another press, short or held: the same event
            current.presses += 1
            current.sequence += 1
            current.long_press = current.long_press or signal.kind == "long_press"
            kind = "long_press" if current.long_press else "panic"
        elif signal.kind == "cancel" and current:
            current.sequence += 1
            kind = "cancel"
        else:  # a new press, a long press, or a cancel with nothing open: an event of its own
            current = _OpenEvent(uuid.uuid4().hex, now, signal.pressed_at, long_press=signal.kind == "long_press")
            self._open[device.device_id] = current
            kind = EVENT_KIND[signal.kind]
        event = PanicEvent(
            event_id=current.event_id, message_id=f"{current.event_id}:{current.sequence}", kind=kind,
            device_id=device.device_id, household=device.household, address=device.address,
            contact=device.contact, camera=device.camera, pressed_at=_utc(current.first_pressed_at),
            received_at=_utc(time.time()), sequence=current.sequence, presses=current.presses,
            battery=signal.battery, site=self._config.box.site, box_id=self._config.box.box_id,
            location=self._location, **self._snapshot(device, current),
        )  # fmt: skip
        self._delivery.send(event)
        self._records.record_event(event.event_id, "panic", "panic", device.device_id, device.camera or "",
                                   event.pressed_at.isoformat())  # fmt: skip
        log.warning("PANIC %s from %s (%s): press %d of event %s via %s", kind, device.device_id,
                    device.household or "-", current.presses, current.event_id, signal.source)  # fmt: skip

    def _snapshot(self, device: PanicDevice, event: _OpenEvent) -> _Snapshot:
        """The nearest camera's view, on an event's first message only (its updates leave faster)."""
        if event.sequence != 1 or not device.camera or self._camera_snapshot is None:
            return {}
        try:
            taken = self._camera_snapshot(device.camera)
        except Exception:  # a snapshot is a nicety: the panic goes without it
            log.exception("no snapshot from camera %s for the panic", device.camera)
            return {}
        if taken is None:
            return {}
        jpeg, ts = taken
        return {"snapshot_jpeg_b64": base64.b64encode(jpeg).decode(), "snapshot_ts": _utc(ts)}

    def _check_battery(self, device: PanicDevice, battery: int) -> None:
        if battery < self._config.panic.low_battery_percent:
            if (device.device_id, "low_battery") not in self._reported:
                self._reported.add((device.device_id, "low_battery"))
                self._notice(device, "low_battery", f"battery at {battery}%")
        else:
            self._reported.discard((device.device_id, "low_battery"))

    def tick(self) -> None:
        """Raise device_offline for devices silent past twice their heartbeat interval."""
        now = self._clock()
        with self._lock:
            for device in self._devices.values():
                interval = device.heartbeat_interval_s
                silent = now - self._last_seen[device.device_id]
                if interval and silent > 2 * interval and (device.device_id, "device_offline") not in self._reported:
                    self._reported.add((device.device_id, "device_offline"))
                    self._notice(
                        device, "device_offline", f"silent for {silent:.0f} s (reports every {interval:.0f} s)"
                    )

    def _notice(self, device: PanicDevice, kind: DeviceNoticeKind, detail: str) -> None:
        box = self._config.box
        notice = DeviceNotice(kind=kind, device_id=device.device_id, household=device.household, detail=detail,
                              ts=_utc(time.time()), site=box.site, box_id=box.box_id)  # fmt: skip
        self._delivery.send(notice)
        log.warning("device %s: %s (%s)", device.device_id, kind, detail)
