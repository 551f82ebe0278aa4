"""The locked-down link (issue 4, test 4): the shipped mosquitto setup (config/mosquitto: TLS only,
a password per box, the ACL) with a CA made by the test. A box can publish only under its own
prefix; a client without TLS, or with a wrong password, cannot connect; a box's replay reaches the
centre over TLS."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import run_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.enrolled import EnrolledData
from tests.support.mqtt import Collector, went_offline
from tests.support.tls import Certificates, make_certificates

PASSWORDS = {"centre": "centre-pw", "s1/b1": "b1-pw", "s1/b2": "b2-pw"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path_factory.mktemp("secure-mosquitto"), secure=certificates, passwords=PASSWORDS).start()
    yield server
    server.stop()


def client(port: int, user: str, password: str, ca: Path | None) -> tuple[mqtt.Client, mqtt.ReasonCode | None]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.username_pw_set(user, password)
    if ca:
        c.tls_set(ca_certs=str(ca))
    result: list[mqtt.ReasonCode] = []
    c.on_connect = lambda cl, u, f, rc, p: result.append(rc)
    try:
        c.connect("127.0.0.1", port)
    except (OSError, ssl.SSLError):
        return c, None
    c.loop_start()
    deadline = time.monotonic() + 5
    while not result and time.monotonic() < deadline:
        time.sleep(0.05)
    return c, result[0] if result else None


def test_a_box_can_publish_only_under_its_own_prefix(secure_broker: Mosquitto, certificates: Certificates) -> None:
    centre = Collector(
        secure_broker.port, "gatebox/#", username="centre", password="centre-pw", ca=str(certificates.ca)
    )
    b2, rc = client(secure_broker.port, "s1/b2", "b2-pw", certificates.ca)
    try:
        assert rc is not None and not rc.is_failure
        b2.publish("gatebox/s1/b1/alert", json.dumps({"event_id": "spoofed"}), qos=1).wait_for_publish(5)
        b2.publish("gatebox/s1/b2/alert", json.dumps({"event_id": "own"}), qos=1).wait_for_publish(5)
        b2.publish("gatebox/s1/b1/receipt", json.dumps({"event_ids": ["x"]}), qos=1).wait_for_publish(5)
        # A marker b2 may send: what the broker let through before it has reached the centre by then.
        b2.publish("gatebox/s1/b2/heartbeat", b"{}", qos=1).wait_for_publish(5)
        topics = [m.topic for m in centre.until(lambda m: m.topic.endswith("/b2/heartbeat"), 10, "b2's marker")]
    finally:
        b2.loop_stop()
        centre.close()
    # The broker acknowledges a denied publish too (MQTT 3.1.1), so only the subscriber can tell.
    assert topics == ["gatebox/s1/b2/alert", "gatebox/s1/b2/heartbeat"]


@pytest.mark.parametrize(
    ("user", "password", "tls"),
    [("s1/b1", "b1-pw", False), ("s1/b1", "wrong", True), ("nobody", "x", True)],
    ids=["no-tls", "wrong-password", "unknown-user"],
)
def test_refused_connections(
    secure_broker: Mosquitto, certificates: Certificates, user: str, password: str, tls: bool
) -> None:
    c, rc = client(secure_broker.port, user, password, certificates.ca if tls else None)
    c.loop_stop()
    assert rc is None or rc.is_failure


def test_plain_tcp_gets_no_mqtt_session(secure_broker: Mosquitto) -> None:
    with socket.create_connection(("127.0.0.1", secure_broker.port), timeout=5) as sock:
        sock.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0]))  # CONNECT, MQTT 3.1.1
        sock.settimeout(3)
        try:
            answer = sock.recv(4)
        except (TimeoutError, ConnectionResetError):
            answer = b""
    assert not answer.startswith(b"\x20")  # never a CONNACK


def test_box_replay_reaches_the_centre_over_tls(
    tmp_path: Path, secure_broker: Mosquitto, certificates: Certificates, crowd_clip: Path, enrolled_data: EnrolledData
) -> None:
    (tmp_path / "pw").write_text("b1-pw\n")
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "s1", "box_id": "b1"},
        broker={"port": secure_broker.port, "username": "s1/b1", "password_file": str(tmp_path / "pw"),
                "tls": {"enabled": True, "ca_file": str(certificates.ca)}, "flush_timeout_s": 20},
    )  # fmt: skip
    enrolled_data.copy(tmp_path / "box", {"boy": "watchlist"})
    centre = Collector(secure_broker.port, "gatebox/s1/b1/#", username="centre", password="centre-pw",
                       ca=str(certificates.ca), receipts=True)  # fmt: skip
    try:
        result = run_cli("--config", config, "--data-dir", tmp_path / "box", "replay",
                         crowd_clip, "--end-frame", "40")  # fmt: skip
        sent = centre.until(went_offline, 30, "the box's offline, after all it sent")
        received = [m for m in sent if m.topic.endswith("/alert")]
    finally:
        centre.close()
    assert result.returncode == 0, result.stderr
    assert "1 alert(s), 1 confirmed by the centre" in result.stdout
    assert [json.loads(m.payload)["subject_id"] for m in received] == ["boy"]
