"""Panic coalescing and device notices (`edge.panic.service`), in process with a clock the test moves:
presses of one device within `panic.coalesce_window_s` of the event's first press update that event
(same `event_id`, next `sequence`, one more press); past the window, or from another device, a new
event; a cancel updates the open event (or stands alone); a long press with nothing open is an event of
its own (inside the window it updates the open one: tests/panic/test_signal_words_fast.py). A
device silent past twice its heartbeat interval raises device_offline once; a low battery, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.box import Box
from edge.config import GateboxConfig
from edge.panic.models import ButtonSignal, SignalKind
from edge.panic.service import PanicService
from edge.protocol.panic import DeviceNotice, PanicEvent

WINDOW_S = 10.0
DEVICES = [
    {"device_id": "btn-1", "household": "Li family", "heartbeat_interval_s": 60},
    {"device_id": "btn-2", "household": "Wang family"},
]


class Clock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Panics:
    service: PanicService
    services: Box
    clock: Clock

    def signal(self, kind: SignalKind = "press", device: str = "btn-1", at: float | None = None,
               battery: int | None = None) -> bool:  # fmt: skip
        """`at`: seconds on the test's clock (it only moves forward)."""
        if at is not None:
            assert at >= self.clock.now - 1000.0
            self.clock.now = 1000.0 + at
        return self.service.submit(ButtonSignal(device, kind, 1_790_000_000.0 + self.clock.now, "http", battery))

    def sent(self) -> list[dict]:
        """Every panic message queued for the centre, oldest first."""
        return [json.loads(payload) for _, payload, _ in self.services.delivery.queued(PanicEvent)]

    def notices(self) -> list[tuple[str, str]]:
        queued = [json.loads(p) for _, p, _ in self.services.delivery.queued(DeviceNotice)]
        return sorted((n["kind"], n["device_id"]) for n in queued)


@pytest.fixture
def panics(tmp_path: Path) -> Iterator[Panics]:
    config = GateboxConfig.model_validate({
        "box": {"site": "s1", "box_id": "b1"},
        "panic": {"devices": DEVICES, "coalesce_window_s": WINDOW_S, "low_battery_percent": 20},
    })  # fmt: skip
    services = Box(config, tmp_path, connect=False)  # no broker: messages stay in the outbox
    clock = Clock()
    yield Panics(PanicService(config, services.delivery, services.states, clock=clock), services, clock)
    services.close()


def test_presses_within_the_window_update_one_event(panics: Panics) -> None:
    for at in (0.0, 1.0, 4.0, WINDOW_S):  # the window's end is still in it
        assert panics.signal(at=at)
    sent = panics.sent()
    assert len({p["event_id"] for p in sent}) == 1
    assert [(p["kind"], p["sequence"], p["presses"]) for p in sent] == [("panic", n, n) for n in (1, 2, 3, 4)]
    assert [p["message_id"] for p in sent] == [f"{sent[0]['event_id']}:{n}" for n in (1, 2, 3, 4)]
    assert {p["pressed_at"] for p in sent} == {sent[0]["pressed_at"]}  # the event's first press


def test_the_window_runs_from_the_first_press_not_the_last(panics: Panics) -> None:
    """Pressing every few seconds does not keep one event open for ever."""
    for at in (0.0, 6.0, WINDOW_S + 0.5):
        panics.signal(at=at)
    first, second, third = panics.sent()
    assert first["event_id"] == second["event_id"] != third["event_id"]
    assert (third["sequence"], third["presses"]) == (1, 1)


def test_a_press_after_the_window_is_a_new_event(panics: Panics) -> None:
    panics.signal(at=0.0)
    panics.signal(at=WINDOW_S + 0.001)
    first, second = panics.sent()
    assert first["event_id"] != second["event_id"] and second["sequence"] == 1 and second["presses"] == 1


def test_each_device_coalesces_on_its_own(panics: Panics) -> None:
    panics.signal(device="btn-1", at=0.0)
    panics.signal(device="btn-2", at=1.0)
    panics.signal(device="btn-1", at=2.0)
    one, two, one_again = panics.sent()
    assert one["event_id"] == one_again["event_id"] != two["event_id"]
    assert (two["device_id"], two["household"], two["presses"]) == ("btn-2", "Wang family", 1)
    assert one_again["presses"] == 2


def test_a_cancel_updates_the_open_event_and_alone_is_its_own(panics: Panics) -> None:
    panics.signal(at=0.0)
    panics.signal("cancel", at=3.0)
    press, cancel = panics.sent()
    assert cancel["event_id"] == press["event_id"]
    assert (cancel["kind"], cancel["sequence"], cancel["presses"]) == ("cancel", 2, 1)  # a cancel is no press
    panics.signal("cancel", at=WINDOW_S + 5)  # nothing open any more
    alone = panics.sent()[-1]
    assert alone["event_id"] != press["event_id"] and (alone["kind"], alone["sequence"]) == ("cancel", 1)


def test_a_long_press_with_nothing_open_is_an_event_of_its_own(panics: Panics) -> None:
    panics.signal(at=0.0)
    panics.signal("long_press", at=WINDOW_S + 1.0)
    press, long_press = panics.sent()
    assert long_press["event_id"] != press["event_id"]
    assert (long_press["kind"], long_press["sequence"], long_press["presses"]) == ("long_press", 1, 1)


def test_heartbeats_and_unknown_devices_raise_no_panic(panics: Panics) -> None:
    assert panics.signal("heartbeat", at=0.0)
    assert not panics.signal(device="btn-404", at=1.0)
    assert panics.sent() == [] and dict(panics.service.rejected) == {"unknown_device": 1}


def test_a_silent_device_is_reported_offline_once_and_again_after_it_came_back(panics: Panics) -> None:
    panics.signal("heartbeat", at=0.0)
    panics.clock.now += 120  # twice btn-1's 60 s interval: not yet past it
    panics.service.tick()
    assert panics.notices() == []
    panics.clock.now += 1
    panics.service.tick()
    panics.service.tick()
    assert panics.notices() == [("device_offline", "btn-1")]  # btn-2 sends no heartbeats: never offline
    panics.signal("heartbeat")  # back
    panics.clock.now += 121
    panics.service.tick()
    assert panics.notices() == [("device_offline", "btn-1"), ("device_offline", "btn-1")]


def test_a_low_battery_is_reported_once_until_it_recovers(panics: Panics) -> None:
    for battery in (19, 5, 80, 10):
        panics.signal("heartbeat", battery=battery)
    assert panics.notices() == [("low_battery", "btn-1"), ("low_battery", "btn-1")]  # at 19 %, and at 10 % again
