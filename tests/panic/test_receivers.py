"""Panic buttons (issue 6): every receiver adapter delivers a press to a real subscriber with the
registry's fields; bounce and repeated presses coalesce; bad input is refused and counted; a press
goes out before 1,000 queued alerts; a press accepted just before the box is killed still arrives;
a new panic carries its nearest camera's current view."""

from __future__ import annotations

import base64
import json
import os
import pty
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from edge.box import Box
from edge.config import GateboxConfig
from edge.panic.receivers import start_receivers
from edge.panic.service import PanicService
from edge.sources.latest import LatestFrames
from edge.types import Frame
from tests.conftest import start_cli, write_config
from tests.support.broker import Mosquitto, free_port
from tests.support.mqtt import Collector
from tests.support.panic_probe import ProbedSink, wait_subscribed
from tests.support.waiting import wait_for

TOKEN = "s3cret-token-for-buttons"
DEVICES = [
    {"device_id": "btn-1", "household": "Li family", "address": "B3-1201", "contact": "+86 138 0000 0001",
     "camera": "main_gate"},
    {"device_id": "btn-2", "household": "Wang", "address": "B1-0102", "heartbeat_interval_s": 1},
]  # fmt: skip


@dataclass
class PanicBox:
    services: Box
    panic: PanicService
    centre: Collector
    http_port: int
    serial_fd: int
    local_port: int
    prefix: str
    receivers: list

    def post(self, body: dict | bytes, token: str = TOKEN) -> int:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/panic", data=data, method="POST",
                                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    def panics(self, timeout: float, until: int = 1) -> list[dict]:
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(got) < until:
            got += [json.loads(m.payload) for m in self.centre.drain(0.2) if m.topic.endswith("/panic")]
        return got


def box_config(tmp_path: Path, broker_port: int, box_id: str, **extra: object) -> GateboxConfig:
    (tmp_path / "token").write_text(TOKEN)
    return GateboxConfig.model_validate({
        "box": {"site": "s1", "box_id": box_id, "site_name": "Sunny Gardens", "gate": "north"},
        "broker": {"port": broker_port, "keepalive_s": 5, "reconnect_max_s": 1},
        "panic": {"devices": DEVICES, "coalesce_window_s": 5, **extra},
    })  # fmt: skip


@pytest.fixture
def panic_box(tmp_path: Path, broker: Mosquitto) -> Iterator[PanicBox]:
    Device.pin_factory = MockFactory()
    master, slave = pty.openpty()
    box_id = f"panic-{tmp_path.name[-6:]}"
    prefix = f"bridge{tmp_path.name[-6:]}"
    config = box_config(
        tmp_path, broker.port, box_id,
        gpio=[{"device_id": "btn-1", "pin": 17, "bounce_s": 0.1, "hold_s": 2}],
        serial=[{"port": os.ttyname(slave)}],
        http={"port": free_port(), "token_file": str(tmp_path / "token")},
        mqtt={"port": broker.port, "topic_prefix": prefix},
    )  # fmt: skip
    centre = Collector(broker.port, f"gatebox/s1/{box_id}/#", receipts=True)
    services = Box(config, tmp_path / "box")
    panic = PanicService(config, services.delivery, services.states)
    probed = ProbedSink(panic)
    receivers = start_receivers(config.panic, probed)
    bridge = mqtt.Client(CallbackAPIVersion.VERSION2)
    bridge.connect("127.0.0.1", broker.port)
    bridge.loop_start()
    wait_subscribed(probed, bridge, prefix)  # the local-MQTT receiver's subscription
    bridge.disconnect()
    bridge.loop_stop()
    assert config.panic.http is not None
    yield PanicBox(services, panic, centre, config.panic.http.port, master, broker.port, prefix, receivers)
    for receiver in receivers:
        receiver.close()
    services.close()
    centre.close()
    Device.pin_factory.close()
    os.close(master)
    os.close(slave)


def press_gpio(box: PanicBox) -> None:
    pin = Device.pin_factory.pin(17)
    pin.drive_low()  # active-low: the button pulls the pin to ground
    time.sleep(0.15)  # the press itself: held longer than the bounce, shorter than a long press
    pin.drive_high()


def press_serial(box: PanicBox) -> None:
    os.write(box.serial_fd, b"btn-1,PRESS,88\n")


def press_http(box: PanicBox) -> None:
    assert box.post({"device_id": "btn-1", "event": "press", "battery": 88}) == 202


def press_mqtt(box: PanicBox) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", box.local_port)
    client.loop_start()
    client.publish(f"{box.prefix}/btn-1", json.dumps({"event": "press", "battery": 88}), qos=1).wait_for_publish(5)
    client.loop_stop()


@pytest.mark.parametrize("press", [press_gpio, press_serial, press_http, press_mqtt], ids=lambda f: f.__name__)
def test_each_receiver_delivers_a_panic_with_the_registry_fields(panic_box: PanicBox, press) -> None:
    press(panic_box)
    (panic,) = panic_box.panics(10)
    assert panic["schema"] == "gatebox.panic/1" and panic["kind"] == "panic" and panic["presses"] == 1
    assert (panic["device_id"], panic["household"], panic["address"], panic["camera"]) == (
        "btn-1",
        "Li family",
        "B3-1201",
        "main_gate",
    )
    assert panic["location"]["site_name"] == "Sunny Gardens" and panic["message_id"] == panic["event_id"] + ":1"
    if press is not press_gpio:
        assert panic["battery"] == 88
    wait_for(lambda: panic_box.services.outbox.stats().depth == 0, 10, "the centre's receipt")


def test_bounce_is_one_press_and_repeats_coalesce(panic_box: PanicBox) -> None:
    pin = Device.pin_factory.pin(17)
    for _ in range(5):  # 10 edges in 50 ms
        pin.drive_low()
        time.sleep(0.005)
        pin.drive_high()
        time.sleep(0.005)
    # Nothing marks the end of a bounce: 3 s without a second panic is what "one press" means here.
    assert len(panic_box.panics(3, until=2)) == 1

    for _ in range(4):  # four more presses of the same button within the window
        press_http(panic_box)
    updates = panic_box.panics(10, until=4)
    assert {p["event_id"] for p in updates} == {updates[0]["event_id"]}  # one event
    assert [p["presses"] for p in updates] == [2, 3, 4, 5] and updates[-1]["sequence"] == 5


def test_bad_input_is_refused_counted_and_the_next_press_works(panic_box: PanicBox) -> None:
    os.write(panic_box.serial_fd, b"garbage without commas\n")
    os.write(panic_box.serial_fd, b"btn-1,EXPLODE\n")
    os.write(panic_box.serial_fd, b"btn-404,PRESS\n")
    assert panic_box.post({"device_id": "btn-1", "event": "press"}, token="wrong-token-xxxxxxxx") == 401
    assert panic_box.post(b"x" * 100_000) == 413
    assert panic_box.post(b"{not json") == 400
    assert panic_box.post({"device_id": "btn-1", "surprise": 1}) == 400
    assert panic_box.post({"device_id": "btn-404"}) == 404
    refused = {"malformed": 4, "unknown_device": 2, "bad_token": 1, "oversized": 1}
    wait_for(lambda: dict(panic_box.panic.rejected) == refused, 10, "every bad input to be refused")
    assert panic_box.services.states.all() == []  # each was handled, and none became a panic
    press_serial(panic_box)
    assert len(panic_box.panics(10)) == 1


def test_silent_device_and_low_battery_raise_notices(panic_box: PanicBox) -> None:
    assert panic_box.post({"device_id": "btn-2", "event": "heartbeat", "battery": 9}) == 202
    notices: list[dict] = []

    def both_noticed() -> bool:
        panic_box.panic.tick()  # btn-2 reports every second: silent for over two is offline
        notices.extend(json.loads(m.payload) for m in panic_box.centre.drain(0.2) if m.topic.endswith("/device"))
        return {n["kind"] for n in notices} >= {"device_offline", "low_battery"}

    wait_for(both_noticed, 15, "device_offline and low_battery for btn-2")
    assert sorted((n["kind"], n["device_id"]) for n in notices) == [
        ("device_offline", "btn-2"),
        ("low_battery", "btn-2"),
    ]


@pytest.mark.slow  # gatebox run
def test_a_panic_goes_before_a_thousand_queued_alerts(tmp_path: Path) -> None:
    from tests.lists.test_elder_rules import alert

    broker = Mosquitto(tmp_path / "mosquitto").start()
    try:
        config = box_config(tmp_path, broker.port, "prio-panic", http={"port": free_port(),
                            "token_file": str(tmp_path / "token")})  # fmt: skip
        centre = Collector(broker.port, "gatebox/s1/prio-panic/#", client_id="centre-panic", receipts=True)
        broker.stop()  # the link is down
        services = Box(config, tmp_path / "box")
        panic = PanicService(config, services.delivery, services.states)
        (http,) = start_receivers(config.panic, panic)
        assert config.panic.http is not None
        for i in range(1000):
            services.alerts.emit(alert(f"a{i:04d}", "watchlist"))
        box = PanicBox(services, panic, centre, config.panic.http.port, -1, 0, "", [http])
        assert box.post({"device_id": "btn-1"}) == 202
        broker.start()
        first = None
        deadline = time.monotonic() + 30
        while first is None and time.monotonic() < deadline:
            for m in centre.drain(0.5):
                if m.topic.endswith(("/alert", "/panic")):
                    first = m.topic.rsplit("/", 1)[-1]
                    break
        http.close()
        services.close()
        centre.close()
    finally:
        broker.stop()
    assert first == "panic"


@pytest.mark.slow  # gatebox run
def test_press_accepted_just_before_the_box_dies_is_delivered_after_restart(tmp_path: Path, shared_data: Path) -> None:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    http_port = free_port()
    (tmp_path / "token").write_text(TOKEN)
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "s1", "box_id": "killed-panic"},
        broker={"port": broker.port, "keepalive_s": 5, "reconnect_max_s": 1},
        cameras=[{"name": "gate", "url": str(shared_data / "video" / "parking_lot_cars.mp4")}],
        panic={"devices": DEVICES, "http": {"port": http_port, "token_file": str(tmp_path / "token")}},
    )
    centre = Collector(broker.port, "gatebox/s1/killed-panic/panic", client_id="centre-killed", receipts=True)
    box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=tmp_path / "run1.log")
    try:
        panic_box = PanicBox(None, None, centre, http_port, -1, 0, "", [])  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if panic_box.post({"device_id": "btn-2", "event": "heartbeat"}) == 202:
                    break
            except OSError:
                time.sleep(0.2)
        broker.stop()  # nothing can leave now
        assert panic_box.post({"device_id": "btn-1"}) == 202
        box.send_signal(signal.SIGKILL)
        box.wait()
        restarted = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=tmp_path / "run2.log")
        broker.start()
        (panic,) = panic_box.panics(60)
        assert panic["device_id"] == "btn-1" and panic["household"] == "Li family"
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(60) == 0
    finally:
        box.kill()
        centre.close()
        broker.stop()


def test_long_press_and_cancel_are_forwarded_as_such(panic_box: PanicBox) -> None:
    os.write(panic_box.serial_fd, b"btn-1,PRESS,70\n")
    os.write(panic_box.serial_fd, b"btn-1,CANCEL,70\n")
    os.write(panic_box.serial_fd, b"btn-2,LONG\n")
    messages = panic_box.panics(10, until=3)
    by_device = {(p["device_id"], p["kind"]): p for p in messages}
    assert set(by_device) == {("btn-1", "panic"), ("btn-1", "cancel"), ("btn-2", "long_press")}
    press, cancel = by_device["btn-1", "panic"], by_device["btn-1", "cancel"]
    assert cancel["event_id"] == press["event_id"] and cancel["sequence"] == 2  # the cancel closes that event


def first_frame(video: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    ok, image = capture.read()
    capture.release()
    assert ok, video
    return image


@pytest.mark.parametrize(("max_age_s", "expect_view"), [(10.0, True), (0.0, False)])
def test_a_panic_carries_its_nearest_cameras_view_on_its_first_message(
    tmp_path: Path, broker: Mosquitto, shared_data: Path, max_age_s: float, expect_view: bool
) -> None:
    http_port = free_port()
    config = box_config(tmp_path, broker.port, f"view-{tmp_path.name[-6:]}",
                        http={"port": http_port, "token_file": str(tmp_path / "token")})  # fmt: skip
    image = first_frame(shared_data / "video" / "parking_lot_cars.mp4")
    latest = LatestFrames(max_age_s=max_age_s)  # 0: the frame is already too old to show
    latest.put(Frame("main_gate", 0, 1_796_000_000.0, image))
    centre = Collector(broker.port, f"gatebox/s1/{config.box.box_id}/panic", receipts=True)
    services = Box(config, tmp_path / "box")
    receivers = start_receivers(config.panic, PanicService(config, services.delivery, services.states, latest.jpeg))
    box = PanicBox(services, None, centre, http_port, -1, 0, "", receivers)  # type: ignore[arg-type]
    try:
        for device in ("btn-1", "btn-1", "btn-2"):  # btn-1 is by main_gate; btn-2 has no camera
            assert box.post({"device_id": device, "event": "press"}) == 202
        panics = sorted(box.panics(20, until=3), key=lambda p: (p["device_id"], p["sequence"]))
    finally:
        for receiver in receivers:
            receiver.close()
        services.close()
        centre.close()
    assert [(p["device_id"], p["sequence"]) for p in panics] == [("btn-1", 1), ("btn-1", 2), ("btn-2", 1)]
    first, update, other = panics
    assert update["snapshot_jpeg_b64"] is None and other["snapshot_jpeg_b64"] is None
    if not expect_view:
        assert first["snapshot_jpeg_b64"] is None
        return
    view = cv2.imdecode(np.frombuffer(base64.b64decode(first["snapshot_jpeg_b64"]), np.uint8), cv2.IMREAD_COLOR)
    height, width = image.shape[:2]
    assert max(view.shape[:2]) == min(640, max(height, width))
    assert abs(view.shape[1] / view.shape[0] - width / height) < 0.02
    assert first["snapshot_ts"].startswith("2026-11-30T00:53:20")  # the frame's capture time


@pytest.mark.slow
def test_gatebox_run_sends_the_view_of_the_camera_by_the_button(tmp_path: Path, broker: Mosquitto,
                                                               shared_data: Path) -> None:  # fmt: skip
    http_port = free_port()
    (tmp_path / "token").write_text(TOKEN)
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "s1", "box_id": "run-view"},
        broker={"port": broker.port, "keepalive_s": 5},
        link={"heartbeat_interval_s": 1},
        cameras=[{"name": "main_gate", "url": str(shared_data / "video" / "parking_lot_cars.mp4")}],
        panic={"devices": DEVICES, "http": {"port": http_port, "token_file": str(tmp_path / "token")}},
    )
    centre = Collector(broker.port, "gatebox/s1/run-view/#", receipts=True)
    box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=tmp_path / "run.log")
    try:
        deadline = time.monotonic() + 90
        watching = False
        while not watching and time.monotonic() < deadline:  # the camera has shown frames
            for message in centre.drain(0.5):
                if message.topic.endswith("/heartbeat"):
                    watching = json.loads(message.payload)["cameras"]["main_gate"]["frames"] > 0
        assert watching, (tmp_path / "run.log").read_text()[-2000:]
        panic_box = PanicBox(None, None, centre, http_port, -1, 0, "", [])  # type: ignore[arg-type]
        assert panic_box.post({"device_id": "btn-1", "event": "press"}) == 202
        (panic,) = panic_box.panics(20)
        view = base64.b64decode(panic["snapshot_jpeg_b64"])
        assert cv2.imdecode(np.frombuffer(view, np.uint8), cv2.IMREAD_COLOR).shape[1] == 640
    finally:
        box.send_signal(signal.SIGTERM)
        assert box.wait(60) == 0
        centre.close()
