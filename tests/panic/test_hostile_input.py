"""Panic receivers against hostile input (issue 13, items 2 and 13): a message that used to kill the
MQTT receiver's thread is refused and counted, and later presses are still relayed; the MQTT
receiver logs in (and speaks TLS) to a bridge broker that refuses anonymous clients; every malformed
HTTP request gets a 4xx, is counted and leaves no traceback; idle connections neither pile up
threads nor lock a button out."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.box import Box
from edge.config import GateboxConfig
from edge.panic.models import ButtonSignal
from edge.panic.receivers import HttpReceiver, MqttReceiver
from edge.panic.service import PanicService
from tests.support.broker import Mosquitto, free_port
from tests.support.mqtt import Collector
from tests.support.panic_probe import ProbedSink, wait_subscribed
from tests.support.tls import make_certificates
from tests.support.waiting import wait_for

TOKEN = "s3cret-token-for-buttons"
DEVICES = [{"device_id": "btn-1", "household": "Li family"}, {"device_id": "btn-2"}]


def box_config(tmp_path: Path, broker_port: int, **panic: object) -> GateboxConfig:
    (tmp_path / "token").write_text(TOKEN)
    return GateboxConfig.model_validate({
        "box": {"site": "s1", "box_id": f"hostile-{tmp_path.name[-6:]}"},
        "broker": {"port": broker_port, "keepalive_s": 5, "reconnect_max_s": 1},
        "panic": {"devices": DEVICES, "coalesce_window_s": 0, **panic},
    })  # fmt: skip


def bridge(port: int, user: str | None = None, password: str | None = None, ca: Path | None = None) -> mqtt.Client:
    """The Zigbee/433 MHz bridge: publishes button signals on the local broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    if user:
        client.username_pw_set(user, password)
    if ca:
        client.tls_set(ca_certs=str(ca))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def relayed_panics(centre: Collector, timeout: float, until: int) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < until:
        got += [json.loads(m.payload) for m in centre.drain(0.2) if m.topic.endswith("/panic")]
    return got


# -- MQTT -----------------------------------------------------------------------------------------

KILLERS = [  # (payload on <prefix>/btn-1, the counter it must land in)
    (b'{"event":"press","battery":[1]}', "malformed"),  # raised TypeError in paho's thread: receiver dead
    (b'{"event":"press","battery":1e400}', "malformed"),  # OverflowError in int(inf)
    (b'{"event":"press","battery":true}', "malformed"),
    (b'{"event":"press","battery":"87"}', "malformed"),
    (b'{"event":"press","battery":101}', "malformed"),
    (b'{"event":["press"]}', "malformed"),
    (b'{"event":"explode"}', "malformed"),
    (b"[1, 2]", "malformed"),
    (b"\xff\xfe{", "malformed"),
    (b'{"event":"press","battery":NaN}', "malformed"),
    (b"[" * 2000 + b"]" * 2000, "too_deep"),  # RecursionError in json
    (b'{"event":"press","pad":"' + b"x" * 5000 + b'"}', "oversized"),
]


def test_a_killer_message_is_refused_counted_and_later_presses_are_still_relayed(
    tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"bridge{tmp_path.name[-6:]}"
    config = box_config(tmp_path, broker.port, mqtt={"port": broker.port, "topic_prefix": prefix})
    centre = Collector(broker.port, f"gatebox/s1/{config.box.box_id}/panic", receipts=True)
    services = Box(config, tmp_path / "box")
    panic = PanicService(config, services.delivery, services.states)
    probed = ProbedSink(panic)
    assert config.panic.mqtt is not None
    receiver = MqttReceiver(config.panic.mqtt, probed)
    sender = bridge(broker.port)
    try:
        wait_subscribed(probed, sender, prefix)
        with caplog.at_level(logging.DEBUG, logger="edge.panic"):
            for payload, _ in KILLERS:
                sender.publish(f"{prefix}/btn-1", payload, qos=1).wait_for_publish(5)
            sender.publish(f"{prefix}/btn 1", b'{"event":"press"}', qos=1).wait_for_publish(5)  # bad device id
            sender.publish(f"{prefix}/" + "b" * 65, b'{"event":"press"}', qos=1).wait_for_publish(5)  # too long
            sender.publish(f"{prefix}/btn-1", b'{"event":"press","battery":88}', qos=1).wait_for_publish(5)
            (press,) = relayed_panics(centre, 15, until=1)
        expected: dict[str, int] = {}
        for _, reason in KILLERS:
            expected[reason] = expected.get(reason, 0) + 1
        expected["malformed"] += 2
        assert (press["device_id"], press["battery"], press["household"]) == ("btn-1", 88, "Li family")
        assert dict(panic.rejected) == expected
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "refused input" in r.getMessage()]
        assert len(warnings) == len(expected)  # logged once per kind; the rest only counted
        assert not [r for r in caplog.records if r.exc_info]  # the sender's mistake: no traceback
    finally:
        sender.loop_stop()
        receiver.close()
        services.close()
        centre.close()


@dataclass
class FlakySink:
    """A sink whose first `submit` raises (a full disk, a bug): the receiver must outlive it."""

    submitted: list[ButtonSignal]
    rejected: list[str]

    def submit(self, signal: ButtonSignal) -> bool:
        self.submitted.append(signal)
        if len(self.submitted) == 1:
            raise RuntimeError("disk full")
        return True

    def reject(self, reason: str, detail: str) -> None:
        self.rejected.append(reason)


def test_no_exception_escapes_into_pahos_thread(tmp_path: Path, broker: Mosquitto) -> None:
    prefix = f"flaky{tmp_path.name[-6:]}"
    config = box_config(tmp_path, broker.port, mqtt={"port": broker.port, "topic_prefix": prefix})
    sink = FlakySink([], [])
    probed = ProbedSink(sink)
    assert config.panic.mqtt is not None
    receiver = MqttReceiver(config.panic.mqtt, probed)
    sender = bridge(broker.port)
    try:
        wait_subscribed(probed, sender, prefix)
        for _ in range(2):
            sender.publish(f"{prefix}/btn-2", b'{"event":"press"}', qos=1).wait_for_publish(5)
        wait_for(lambda: len(sink.submitted) == 2, 10, "the press after the failing one")
        assert sink.rejected == ["error"]
    finally:
        sender.loop_stop()
        receiver.close()


@pytest.mark.parametrize("tls", [False, True], ids=["login", "login+tls"])
def test_the_mqtt_receiver_logs_in_to_a_bridge_broker_without_anonymous_access(
    tmp_path: Path, broker: Mosquitto, tls: bool
) -> None:
    users = {"bridge": "bridge-pw", "gatebox": "gatebox-pw"}
    certificates = make_certificates(tmp_path / "tls") if tls else None
    acl = tmp_path / "acl"
    acl.write_text("user bridge\ntopic write panic/#\nuser gatebox\ntopic read panic/#\n")
    local = Mosquitto(tmp_path / "local", secure=certificates, passwords=users, acl=acl if tls else None).start()
    (tmp_path / "mqtt-password").write_text("gatebox-pw\n")
    receiver_config = {"port": local.port, "topic_prefix": "panic", "username": "gatebox",
                       "password_file": str(tmp_path / "mqtt-password")}  # fmt: skip
    if certificates:
        receiver_config["tls"] = {"enabled": True, "ca_file": str(certificates.ca)}
    config = box_config(tmp_path, broker.port, mqtt=receiver_config)
    centre = Collector(broker.port, f"gatebox/s1/{config.box.box_id}/panic", receipts=True)
    services = Box(config, tmp_path / "box")
    panic = PanicService(config, services.delivery, services.states)
    probed = ProbedSink(panic)
    assert config.panic.mqtt is not None
    receiver = MqttReceiver(config.panic.mqtt, probed)
    sender = bridge(local.port, "bridge", "bridge-pw", certificates.ca if certificates else None)
    anonymous = mqtt.Client(CallbackAPIVersion.VERSION2)
    refused: list[mqtt.ReasonCode] = []
    anonymous.on_connect = lambda c, u, f, rc, p: refused.append(rc)
    try:
        if certificates:
            anonymous.tls_set(ca_certs=str(certificates.ca))
        anonymous.connect("127.0.0.1", local.port)
        anonymous.loop_start()
        wait_for(lambda: bool(refused), 5, "the broker's answer to an anonymous client")
        assert refused[0].is_failure  # the bridge broker does not let anyone in
        wait_subscribed(probed, sender, "panic")
        sender.publish("panic/btn-1", b'{"event":"press","battery":77}', qos=1).wait_for_publish(5)
        (press,) = relayed_panics(centre, 15, until=1)
        assert (press["device_id"], press["battery"]) == ("btn-1", 77)
        assert dict(panic.rejected) == {}
    finally:
        anonymous.loop_stop()
        sender.loop_stop()
        receiver.close()
        services.close()
        centre.close()
        local.stop()


# -- HTTP -----------------------------------------------------------------------------------------


@dataclass
class HttpBox:
    receiver: HttpReceiver
    panic: PanicService
    services: Box

    def raw(self, request: bytes, timeout: float = 5.0, close_write: bool = False) -> int:
        """Send `request` as is; the status the receiver answers (0 if it closed without one)."""
        with socket.create_connection(("127.0.0.1", self.receiver.port), timeout=timeout) as conn:
            conn.sendall(request)
            if close_write:
                conn.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0

    def press(self, device: str = "btn-1") -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.receiver.port}/panic", method="POST",
            data=json.dumps({"device_id": device, "event": "press"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status


@pytest.fixture
def http_box(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HttpBox]:
    limits = getattr(request, "param", {})
    http = {"port": free_port(), "token_file": str(tmp_path / "token"), **limits}
    config = box_config(tmp_path, free_port(), http=http)
    services = Box(config, tmp_path / "box", connect=False)
    panic = PanicService(config, services.delivery, services.states)
    assert config.panic.http is not None
    receiver = HttpReceiver(config.panic.http, panic)
    yield HttpBox(receiver, panic, services)
    receiver.close()
    services.close()


def post(body: bytes, *headers: str, length: str | None = "auto") -> bytes:
    lines = ["POST /panic HTTP/1.1", "Host: box", f"Authorization: Bearer {TOKEN}", *headers]
    if length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


MALFORMED = [  # (name, raw request, status, counter)
    ("battery [1]", post(b'{"device_id":"btn-1","event":"press","battery":[1]}'), 400, "malformed"),
    ("battery 1e400", post(b'{"device_id":"btn-1","event":"press","battery":1e400}'), 400, "malformed"),
    ("battery true", post(b'{"device_id":"btn-1","battery":true}'), 400, "malformed"),
    ("huge integer", post(b'{"device_id":"btn-1","battery":' + b"9" * 4000 + b"}"), 400, "malformed"),
    ("event list", post(b'{"device_id":"btn-1","event":["press"]}'), 400, "malformed"),
    ("device id pattern", post(b'{"device_id":"../../etc","event":"press"}'), 400, "malformed"),
    ("device id length", post(b'{"device_id":"' + b"b" * 65 + b'"}'), 400, "malformed"),
    ("not utf-8", post(b'{"device_id":"\xff"}'), 400, "malformed"),
    ("2,000 deep", post(b"[" * 2000 + b"]" * 2000), 400, "too_deep"),
    ("Content-Length abc", post(b'{"device_id":"btn-1"}', length="abc"), 400, "malformed"),
    ("Content-Length -1", post(b"x" * 8192, length="-1"), 400, "malformed"),
    ("Content-Length +5", post(b'{"a":1}', length="+5"), 400, "malformed"),
    ("Content-Length twice", post(b"{}", "Content-Length: 2", length="2"), 400, "malformed"),
    ("Content-Length 20 digits", post(b"{}", length="9" * 20), 400, "malformed"),
    ("over the limit", post(b"x" * 100, length="100000"), 413, "oversized"),
    ("no Content-Length", post(b'{"device_id":"btn-1"}', length=None), 411, "malformed"),
    ("chunked", post(b"5\r\n{}{}{\r\n0\r\n\r\n", "Transfer-Encoding: chunked", length=None), 411, "malformed"),
    ("garbage request line", b"\x00\x01 nonsense\r\n\r\n", 400, "malformed"),
    ("bad HTTP version", b"POST /panic HTTP/one\r\n\r\n", 400, "malformed"),
    ("header line too long", b"POST /panic HTTP/1.1\r\nX: " + b"x" * 70000 + b"\r\n\r\n", 431, "malformed"),
]


@pytest.mark.parametrize(("name", "request_bytes", "status", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_every_malformed_request_gets_a_4xx_is_counted_and_leaves_no_traceback(
    http_box: HttpBox, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, name: str,
    request_bytes: bytes, status: int, reason: str,
) -> None:  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        # The socket stays open for writing: a receiver reading past its limit would wait for more.
        assert http_box.raw(request_bytes) == status
        wait_for(lambda: sum(http_box.panic.rejected.values()) >= 1, 5, "the refusal to be counted")
    assert dict(http_box.panic.rejected) == {reason: 1}
    assert "Traceback" not in capsys.readouterr().err
    assert not [r for r in caplog.records if r.exc_info]
    assert http_box.press() == 202  # and the receiver still takes presses


def test_a_body_shorter_than_its_content_length_or_too_slow_is_refused(tmp_path: Path) -> None:
    config = box_config(tmp_path, free_port(), http={"port": free_port(), "token_file": str(tmp_path / "token"),
                                                     "idle_timeout_s": 0.5})  # fmt: skip
    services = Box(config, tmp_path / "box", connect=False)
    panic = PanicService(config, services.delivery, services.states)
    assert config.panic.http is not None
    box = HttpBox(HttpReceiver(config.panic.http, panic), panic, services)
    try:
        assert box.raw(post(b'{"device_id"', length="200"), close_write=True) == 400
        started = time.monotonic()
        assert box.raw(post(b'{"device_id"', length="200")) == 408  # the rest never comes
        assert time.monotonic() - started < 3
        assert dict(panic.rejected) == {"malformed": 1, "timeout": 1}
    finally:
        box.receiver.close()
        services.close()


def handler_threads() -> int:
    """Threads serving a connection (socketserver names them after `process_request_thread`)."""
    return sum(1 for t in threading.enumerate() if "process_request_thread" in t.name)


@pytest.mark.parametrize("http_box", [{"max_connections": 8, "idle_timeout_s": 60}], indirect=True)
def test_idle_connections_cannot_pile_up_threads_or_lock_a_button_out(http_box: HttpBox) -> None:
    idle = []
    try:
        for _ in range(300):  # connect and say nothing, for longer than the test lasts
            idle.append(socket.create_connection(("127.0.0.1", http_box.receiver.port), timeout=5))
        idle_closed = lambda: http_box.panic.rejected["idle_closed"]  # noqa: E731
        wait_for(lambda: idle_closed() >= 300 - 8, 10, "the connections over the limit to be closed")
        # A slot is freed just before its thread ends: at most a couple more threads for a moment.
        assert handler_threads() <= 8 + 2
        started = time.monotonic()
        assert http_box.press() == 202
        assert time.monotonic() - started < 5
        assert handler_threads() <= 8 + 2
        assert set(http_box.panic.rejected) == {"idle_closed"} and http_box.panic.rejected["idle_closed"] >= 300 - 8
    finally:
        for conn in idle:
            conn.close()


@pytest.mark.parametrize("http_box", [{"idle_timeout_s": 0.5}], indirect=True)
def test_a_silent_connection_is_closed_after_the_idle_timeout(http_box: HttpBox) -> None:
    conns = [socket.create_connection(("127.0.0.1", http_box.receiver.port), timeout=5) for _ in range(10)]
    try:
        started = time.monotonic()
        assert all(conn.recv(1) == b"" for conn in conns)  # closed by the receiver, not by us
        assert time.monotonic() - started < 3
        wait_for(lambda: handler_threads() == 0, 5, "the connections' threads to end")
    finally:
        for conn in conns:
            conn.close()
