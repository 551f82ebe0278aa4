"""Panic signals as integrators send them (issue 17): every receiver takes both sets of event words
(`press|long_press|cancel|heartbeat` and the serial receivers' `PRESS|LONG|CANCEL|HB`) in any case,
and a long press inside the coalescing window updates the open event (kind `long_press` from then
on) instead of opening a second one. In process: the parsers, the HTTP and serial receivers with a
recording sink, and the panic service with a clock the test moves."""

from __future__ import annotations

import json
import os
import pty
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.box import Box
from edge.config import GateboxConfig
from edge.panic.models import ButtonSignal, SignalKind, SignalMessage
from edge.panic.receivers import parse_serial_line, parse_signal, start_receivers
from edge.panic.service import PanicService
from edge.protocol.panic import PanicEvent
from tests.support.broker import free_port
from tests.support.waiting import wait_for

WORDS: list[tuple[str, SignalKind]] = [
    ("press", "press"), ("PRESS", "press"), ("Press", "press"),
    ("long_press", "long_press"), ("LONG_PRESS", "long_press"), ("LONG", "long_press"), ("long", "long_press"),
    ("cancel", "cancel"), ("CANCEL", "cancel"), ("Cancel", "cancel"),
    ("heartbeat", "heartbeat"), ("HEARTBEAT", "heartbeat"), ("HB", "heartbeat"), ("hb", "heartbeat"),
]  # fmt: skip
NOT_WORDS = ["pressed", "", "long press", "long-press", "LONGPRESS", "h b", "panic"]


@pytest.mark.parametrize(("word", "kind"), WORDS)
def test_json_signals_take_both_spellings_in_any_case(word: str, kind: SignalKind) -> None:
    body = json.dumps({"event": word, "battery": 50}).encode()
    assert parse_signal(body, 4096, "btn-1") == SignalMessage(device_id="btn-1", event=kind, battery=50)  # MQTT
    assert parse_signal(json.dumps({"device_id": "btn-1", "event": word}).encode(), 4096).event == kind  # HTTP


@pytest.mark.parametrize(("word", "kind"), WORDS)
def test_serial_lines_take_both_spellings_in_any_case(word: str, kind: SignalKind) -> None:
    assert parse_serial_line(f"btn-1,{word},87\n".encode()) == ("btn-1", kind, 87)


@pytest.mark.parametrize("word", [*NOT_WORDS, 7, None])
def test_other_words_are_refused_everywhere(word: object) -> None:
    with pytest.raises(ValidationError):
        SignalMessage.model_validate({"device_id": "btn-1", "event": word})
    if isinstance(word, str):
        with pytest.raises(ValueError, match="expected DEVICE_ID,EVENT"):
            parse_serial_line(f"btn-1,{word}\n".encode())


class Recorded:
    """A sink that keeps what the receivers hand over."""

    def __init__(self) -> None:
        self.signals: list[ButtonSignal] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def submit(self, signal: ButtonSignal) -> bool:
        with self._lock:
            self.signals.append(signal)
        return True

    def reject(self, reason: str, detail: str) -> None:
        self.refused.append(reason)


def test_the_http_and_serial_receivers_take_both_spellings(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("a-token-of-sixteen-or-more")
    master, slave = pty.openpty()
    port = free_port()
    config = GateboxConfig.model_validate({"panic": {
        "devices": [{"device_id": "btn-1"}], "serial": [{"port": os.ttyname(slave)}],
        "http": {"port": port, "token_file": str(tmp_path / "token")},
    }})  # fmt: skip
    sink = Recorded()
    receivers = start_receivers(config.panic, sink)
    try:
        for word, _ in WORDS:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/panic", data=json.dumps({"device_id": "btn-1", "event": word}).encode(),
                method="POST", headers={"Authorization": "Bearer a-token-of-sixteen-or-more"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 202, word
        wait_for(lambda: len(sink.signals) == len(WORDS), 10, "every HTTP signal")
        for word, _ in WORDS:
            os.write(master, f"btn-1,{word}\n".encode())
        wait_for(lambda: len(sink.signals) == 2 * len(WORDS), 10, "every serial line")
    finally:
        for receiver in receivers:
            receiver.close()
        os.close(master)
        os.close(slave)
    kinds = [kind for _, kind in WORDS]
    assert [(s.source, s.kind) for s in sink.signals] == [("http", k) for k in kinds] + [("serial", k) for k in kinds]
    assert sink.refused == []


WINDOW_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[PanicService, Box, Clock]]:
    config = GateboxConfig.model_validate({
        "box": {"site": "s1", "box_id": "b1"},
        "panic": {"devices": [{"device_id": "btn-1"}, {"device_id": "btn-2"}], "coalesce_window_s": WINDOW_S},
    })  # fmt: skip
    services = Box(config, tmp_path, connect=False)  # no broker: messages stay in the outbox
    clock = Clock()
    yield PanicService(config, services.delivery, services.states, clock=clock), services, clock
    services.close()


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        # (device, signal, seconds after the first) -> (event number, kind, sequence, presses) per message
        ([("btn-1", "press", 0), ("btn-1", "long_press", 2)], [(1, "panic", 1, 1), (1, "long_press", 2, 2)]),
        ([("btn-1", "long_press", 0), ("btn-1", "press", 3)], [(1, "long_press", 1, 1), (1, "long_press", 2, 2)]),
        (
            [("btn-1", "press", 0), ("btn-1", "long_press", 4), ("btn-1", "press", 6), ("btn-1", "cancel", 8)],
            [(1, "panic", 1, 1), (1, "long_press", 2, 2), (1, "long_press", 3, 3), (1, "cancel", 4, 3)],
        ),
        (
            [("btn-1", "press", 0), ("btn-1", "long_press", WINDOW_S)],  # the window's end is still in it
            [(1, "panic", 1, 1), (1, "long_press", 2, 2)],
        ),
        (
            [("btn-1", "press", 0), ("btn-1", "long_press", WINDOW_S + 0.5)],  # past it: an event of its own
            [(1, "panic", 1, 1), (2, "long_press", 1, 1)],
        ),
        (
            [("btn-1", "press", 0), ("btn-2", "long_press", 1)],  # another device's: its own event
            [(1, "panic", 1, 1), (2, "long_press", 1, 1)],
        ),
        ([("btn-1", "long_press", 0), ("btn-1", "long_press", 1)], [(1, "long_press", 1, 1), (1, "long_press", 2, 2)]),
    ],
)
def test_a_long_press_in_the_window_updates_the_open_event(
    service: tuple[PanicService, Box, Clock], signals: list[tuple[str, SignalKind, float]], expected: list[tuple]
) -> None:
    panics, box, clock = service
    for device, kind, at in signals:
        clock.now = 1000.0 + at
        assert panics.submit(ButtonSignal(device, kind, 1_790_000_000.0 + at, "http"))
    sent = [json.loads(payload) for _, payload, _ in box.delivery.queued(PanicEvent)]
    events = list(dict.fromkeys(p["event_id"] for p in sent))
    shown = [(events.index(p["event_id"]) + 1, p["kind"], p["sequence"], p["presses"]) for p in sent]
    assert shown == expected
    assert all(p["message_id"] == f"{p['event_id']}:{p['sequence']}" for p in sent)
