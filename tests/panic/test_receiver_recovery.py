"""Panic receivers recover on their own, as cameras do (issue 17): a radio receiver that is unplugged
and plugged back (a pty pair behind a stable device link, as udev's /dev/serial/by-id gives) is
reopened with backoff; one that cannot start yet (no radio, the HTTP port taken, no GPIO pin) does not
stop the box or the other receivers; each receiver's state is in the heartbeat."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.box import Box
from edge.config import GateboxConfig, ReconnectConfig, SerialReceiverConfig
from edge.health import heartbeat
from edge.panic.models import ButtonSignal
from edge.panic.receivers import SerialReceiver, start_receivers
from tests.support.broker import free_port
from tests.support.waiting import wait_for

FAST_RETRY = {"initial_backoff_s": 0.05, "max_backoff_s": 0.2}
TOKEN = "a-token-of-24-characters"


class Sink:
    def __init__(self) -> None:
        self.signals: list[ButtonSignal] = []
        self.refused: list[str] = []

    def submit(self, signal: ButtonSignal) -> bool:
        self.signals.append(signal)
        return True

    def reject(self, reason: str, detail: str) -> None:
        self.refused.append(reason)


class Radio:
    """A USB radio receiver: a pty pair whose device is reached through a link that is there only while
    it is plugged in."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self._fds: tuple[int, int] | None = None

    def plug(self) -> None:
        master, slave = os.openpty()
        self._fds = (master, slave)
        self.link.symlink_to(os.ttyname(slave))

    def unplug(self) -> None:
        assert self._fds is not None
        self.link.unlink()
        for fd in self._fds:  # the device is gone: whoever holds it open reads a hang-up
            os.close(fd)
        self._fds = None

    def send(self, line: bytes) -> None:
        assert self._fds is not None
        os.write(self._fds[0], line)


@pytest.fixture
def radio(tmp_path: Path) -> Iterator[Radio]:
    radio = Radio(tmp_path / "ttyUSB-radio")
    yield radio
    if radio._fds is not None:
        radio.unplug()


def test_an_unplugged_radio_is_reopened_with_backoff_and_relays_again(radio: Radio) -> None:
    sink = Sink()
    receiver = SerialReceiver(SerialReceiverConfig(port=str(radio.link)), sink, ReconnectConfig(**FAST_RETRY))
    try:  # not plugged in at start: the receiver starts anyway and says why it is down
        wait_for(lambda: receiver.status.error is not None, 5, "the missing port to be reported")
        assert not receiver.status.connected and "cannot open" in (receiver.status.error or "")

        radio.plug()
        wait_for(lambda: receiver.status.connected, 5, "the radio to be opened once plugged in")
        radio.send(b"btn-1,PRESS,80\n")
        wait_for(lambda: len(sink.signals) == 1, 5, "the first press")

        radio.unplug()
        wait_for(lambda: not receiver.status.connected, 5, "the unplugged radio to be reported down")
        radio.plug()
        wait_for(lambda: receiver.status.connected, 5, "the radio to be reopened")
        assert receiver.status.report().model_dump() == {"connected": True, "reconnects": 1, "error": None,
                                                        "down_since": None}  # fmt: skip
        radio.send(b"btn-1,PRESS,79\n")
        wait_for(lambda: len(sink.signals) == 2, 5, "a press after the radio came back")
    finally:
        receiver.close()
    assert [(s.device_id, s.kind, s.battery) for s in sink.signals] == [("btn-1", "press", 80), ("btn-1", "press", 79)]
    assert sink.refused == []


def post_press(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/panic", data=json.dumps({"device_id": "btn-1"}).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def test_a_receiver_that_cannot_start_stops_nothing_and_is_retried(tmp_path: Path, radio: Radio) -> None:
    Device.pin_factory = MockFactory()
    (tmp_path / "token").write_text(TOKEN)
    http_port = free_port()
    taken = socket.socket()  # someone else holds the HTTP port when the box starts
    taken.bind(("127.0.0.1", http_port))
    taken.listen()
    radio.plug()
    config = GateboxConfig.model_validate({
        "panic": {
            "devices": [{"device_id": "btn-1"}], "reconnect": FAST_RETRY,
            "gpio": [{"device_id": "btn-1", "pin": 99}],  # no such pin on this board
            "serial": [{"port": str(radio.link)}],
            "http": {"port": http_port, "token_file": str(tmp_path / "token")},
        },
    })  # fmt: skip
    sink = Sink()
    receivers = start_receivers(config.panic, sink)  # raises nothing
    gpio, serial, http = receivers
    box = Box(config, tmp_path / "box", connect=False)
    try:
        wait_for(lambda: serial.status.connected, 5, "the radio")
        radio.send(b"btn-1,PRESS\n")  # the receivers that can start relay at once
        wait_for(lambda: len(sink.signals) == 1, 5, "a press on the radio while HTTP and GPIO are down")

        reports = heartbeat(box, [], time.monotonic(), None, [r.status for r in receivers]).panic_receivers
        assert set(reports) == {"gpio:99", serial.status.name, f"http:127.0.0.1:{http_port}"}
        assert serial.status.name.endswith("/ttyUSB-radio") and len(serial.status.name) <= 64  # a heartbeat key
        assert reports[serial.status.name].connected is True
        assert reports["gpio:99"].connected is False and reports["gpio:99"].error
        down = reports[f"http:127.0.0.1:{http_port}"]
        assert down.connected is False and "cannot listen" in (down.error or "")

        taken.close()  # the port is free again: the HTTP receiver binds it on its next attempt
        wait_for(lambda: http.status.connected, 5, "the HTTP receiver to start once its port is free")
        assert post_press(http_port) == 202
        assert [s.source for s in sink.signals] == ["serial", "http"]
        assert not gpio.status.connected  # still retrying, still stopping nothing
    finally:
        taken.close()
        for receiver in receivers:
            receiver.close()
        box.close()
        Device.pin_factory.close()
