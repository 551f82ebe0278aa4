"""A box that only relays panic buttons (issue 17): `gatebox run` with panic devices and no camera runs
the panic service, the link and the heartbeat; the bridge's broker going down is reported in the heartbeat
(`panic_receivers`) while the other receivers go on relaying, and the MQTT receiver is back when the broker
is. `doctor` logs in to the bridge's broker as the receiver does. Real mosquittos, the CLI as a process."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import GateboxConfig
from edge.doctor import check_panic_receivers
from tests.conftest import run_cli, start_cli, write_config
from tests.support.broker import Mosquitto, free_port
from tests.support.mqtt import Collector

TOKEN = "a-token-of-24-characters"


def post_press(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/panic", data=json.dumps({"device_id": "btn-1"}).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def receiver_state(name: str, connected: bool, reconnects: int | None = None) -> Callable[[mqtt.MQTTMessage], bool]:
    """A heartbeat that reports receiver `name` in this state."""

    def matches(message: mqtt.MQTTMessage) -> bool:
        if not message.topic.endswith("/heartbeat"):
            return False
        report = json.loads(message.payload).get("panic_receivers", {}).get(name)
        return bool(report) and report["connected"] is connected and reconnects in (None, report["reconnects"])

    return matches


def is_panic(message: mqtt.MQTTMessage) -> bool:
    return message.topic.endswith("/panic")


@pytest.mark.slow
def test_a_panic_only_box_relays_and_survives_its_bridge_broker_going_away(tmp_path: Path, broker: Mosquitto) -> None:
    bridge = Mosquitto(tmp_path / "bridge").start()  # the Zigbee/433 MHz bridge's own broker
    (tmp_path / "token").write_text(TOKEN)
    http_port = free_port()
    config = write_config(
        tmp_path / "gatebox.yaml",
        box={"site": "test-site", "box_id": "panic-only"},
        broker={"port": broker.port, "keepalive_s": 5},
        link={"heartbeat_interval_s": 0.5},
        panic={"devices": [{"device_id": "btn-1", "household": "Li family"}], "coalesce_window_s": 0,
               "reconnect": {"initial_backoff_s": 0.2, "max_backoff_s": 1},
               "http": {"port": http_port, "token_file": str(tmp_path / "token")},
               "mqtt": {"port": bridge.port, "topic_prefix": "bridge"}},
    )  # fmt: skip
    mqtt_receiver = f"mqtt:127.0.0.1:{bridge.port}"
    centre = Collector(broker.port, "gatebox/test-site/panic-only/#", receipts=True)
    log = tmp_path / "run.log"
    box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=log)
    text = lambda: log.read_text(errors="replace")  # noqa: E731
    try:
        centre.until(receiver_state(mqtt_receiver, True, 0), 60, f"a heartbeat with {mqtt_receiver} up\n{text()}")
        assert "relaying panic buttons only (1 device(s))" in text()
        assert post_press(http_port) == 202
        assert json.loads(centre.until(is_panic, 10, "the first panic")[-1].payload)["household"] == "Li family"

        bridge.stop()  # the bridge's broker goes away: reported, and the HTTP buttons still relay
        centre.until(receiver_state(mqtt_receiver, False), 15, "the bridge's broker to be reported down")
        assert post_press(http_port) == 202
        centre.until(is_panic, 10, "a panic while the bridge's broker is down")

        bridge.start()  # back on the same port: the receiver logs in again by itself
        centre.until(receiver_state(mqtt_receiver, True, 1), 15, "the MQTT receiver to be back")
        sender = mqtt.Client(CallbackAPIVersion.VERSION2)
        sender.connect("127.0.0.1", bridge.port)
        sender.loop_start()
        try:
            sender.publish("bridge/btn-1", b'{"event": "press"}', qos=1).wait_for_publish(5)
            centre.until(is_panic, 10, "a panic through the bridge after it came back")
        finally:
            sender.disconnect()
            sender.loop_stop()
        assert box.poll() is None, text()
    finally:
        box.send_signal(signal.SIGTERM)
        code = box.wait(30)
        centre.close()
        bridge.stop()
    assert code == 0, text()
    assert "Traceback" not in text()


@pytest.mark.slow
def test_doctor_logs_in_to_the_bridge_broker_as_the_receiver_does(tmp_path: Path) -> None:
    bridge = Mosquitto(tmp_path / "bridge", passwords={"gatebox": "bridge-password"}).start()
    (tmp_path / "right").write_text("bridge-password\n")
    (tmp_path / "wrong").write_text("guess\n")
    try:
        checks = {}
        for password in ("right", "wrong"):
            mqtt_receiver = {"port": bridge.port, "username": "gatebox", "password_file": str(tmp_path / password)}
            panic = {"devices": [{"device_id": "btn-1"}], "mqtt": mqtt_receiver}
            config = GateboxConfig.model_validate({"panic": panic})
            checks[password] = check_panic_receivers(config)
    finally:
        bridge.stop()
    (right,), (wrong,) = checks["right"], checks["wrong"]
    assert (right.name, right.status) == ("panic mqtt", "OK") and "as gatebox" in right.detail
    assert wrong.status == "FAIL" and "refused the connection" in wrong.detail
    assert "panic.mqtt.username and the password in panic.mqtt.password_file" in wrong.fix


@pytest.mark.slow
def test_doctor_passes_a_panic_only_box(tmp_path: Path, broker: Mosquitto) -> None:
    (tmp_path / "token").write_text(TOKEN)
    config = write_config(
        tmp_path / "gatebox.yaml",
        broker={"port": broker.port},
        panic={
            "devices": [{"device_id": "btn-1"}],
            "http": {"port": free_port(), "token_file": str(tmp_path / "token")},
        },
        data_dir=str(tmp_path / "box"),
    )
    result = run_cli("--config", config, "doctor", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "relays panic buttons only" in result.stdout and "FAIL" not in result.stdout
    assert "models" not in result.stdout.split()  # a panic-only box loads none
