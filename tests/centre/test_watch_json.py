"""`gatebox centre watch --json` (issue 17, the integrator): every message it shows, whatever its kind
(availability, alert, panic, alert state, device notice), is one JSON object per line on stdout, in
one envelope `{"type", "site", "box_id", "message"}`; stderr holds nothing but logs and warnings."""

from __future__ import annotations

import io
import json
import queue
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import centre.watch
from edge.protocol.messages import AlertState
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.panic import DeviceNotice, PanicEvent
from tests.conftest import REPO, write_config
from tests.support.alerts import sample_alert
from tests.support.broker import Mosquitto

TS = datetime(2026, 11, 30, 8, 15, tzinfo=timezone.utc)
PANIC = PanicEvent(event_id="p1", message_id="p1:1", kind="panic", device_id="btn-7", household="Li family",
                   pressed_at=TS, received_at=TS, sequence=1, presses=1, site="north", box_id="g2")  # fmt: skip
NOTICE = DeviceNotice(kind="low_battery", device_id="btn-7", detail="battery at 9%", ts=TS, site="north", box_id="g2")
STATE = AlertState(event_id="e1", state="acked", note="on my way", by="alice")
ALERT = sample_alert("e1", "missing_elders", site="north", box_id="g2")

# (topic leaf, payload) as a box sends them, and the `type` and `message` watch --json shows for each.
MESSAGES: list[tuple[str, bytes, str, object]] = [
    ("availability", b"online", "availability", {"state": "online"}),
    ("alert", ALERT.to_json().encode(), "alert", json.loads(ALERT.to_json())),
    ("panic", PANIC.model_dump_json(by_alias=True).encode(), "panic", json.loads(PANIC.model_dump_json(by_alias=True))),
    ("alert_state", STATE.model_dump_json(by_alias=True).encode(), "alert_state",
     json.loads(STATE.model_dump_json(by_alias=True))),
    ("device", NOTICE.model_dump_json(by_alias=True).encode(), "device",
     json.loads(NOTICE.model_dump_json(by_alias=True))),
    ("availability", b"offline", "availability", {"state": "offline"}),
]  # fmt: skip


class _Client:
    def publish(self, *args: object, **kwargs: object) -> None:
        pass  # receipts: not what this test is about


def _message(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(topic=topic.encode())
    message.payload = payload
    return message


@pytest.mark.parametrize("as_json", [True, False])
def test_every_message_is_one_line_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    for leaf, payload, _, _ in MESSAGES:
        inbox.put(_message(f"gatebox/north/g2/{leaf}", payload))
    inbox.put(_message("gatebox/north/g2/alert", b"{not json"))  # a warning, on stderr, in either mode
    monkeypatch.setattr(centre.watch, "connect", lambda broker, subscriptions: (_Client(), inbox))
    monkeypatch.setattr(centre.watch, "disconnect", lambda client: None)
    monkeypatch.setattr("centre.watch.time.sleep", lambda s: None)
    out = io.StringIO()
    assert centre.watch.watch(BrokerConfig(), out=out, as_json=as_json, timeout=0.5) == 1
    lines = out.getvalue().splitlines()
    err = capsys.readouterr().err
    assert len(lines) == len(MESSAGES), lines
    assert err.count("warning: skipped malformed alert") == 1 and len(err.splitlines()) == 1, err
    if as_json:
        shown = [json.loads(line) for line in lines]
        expected = [{"type": kind, "site": "north", "box_id": "g2", "message": body} for _, _, kind, body in MESSAGES]
        assert shown == expected
    else:
        assert [line.split()[0] for line in lines] == ["BOX", "ALERT", "!!!", "STATE", "DEVICE", "BOX"]


def test_a_boxs_control_characters_stay_escaped_and_the_line_stays_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    inbox.put(_message("gatebox/north/g2/availability", "\x1b]0;pwned\x07on\u202eline\x85".encode()))
    monkeypatch.setattr(centre.watch, "connect", lambda broker, subscriptions: (_Client(), inbox))
    monkeypatch.setattr(centre.watch, "disconnect", lambda client: None)
    monkeypatch.setattr("centre.watch.time.sleep", lambda s: None)
    out = io.StringIO()
    centre.watch.watch(BrokerConfig(), out=out, as_json=True, timeout=0.3)
    (line,) = out.getvalue().splitlines()
    assert not centre.watch.UNPRINTABLE.search(line)
    assert json.loads(line)["message"] == {"state": "\x1b]0;pwned\x07on\u202eline\x85"}


@pytest.mark.slow  # the watch CLI against a real mosquitto
def test_watch_json_on_a_real_broker_keeps_stdout_json_and_stderr_free_of_messages(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = write_config(tmp_path / "centre.yaml", broker={"port": broker.port, "topic_prefix": "jsonwatch"})
    box = mqtt.Client(CallbackAPIVersion.VERSION2)
    box.connect("127.0.0.1", broker.port)
    box.loop_start()
    box.publish("jsonwatch/north/g2/availability", "online", qos=1, retain=True).wait_for_publish(5)
    watch = subprocess.Popen(
        [sys.executable, "-m", "centre", "--config", str(config), "watch", "--json", "--count", "1", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        assert json.loads(watch.stdout.readline())["type"] == "availability"  # subscribed: retained state shown
        for leaf, payload, _, _ in MESSAGES[2:5] + MESSAGES[1:2]:  # the alert last: --count 1 ends the watch
            box.publish(f"jsonwatch/north/g2/{leaf}", payload, qos=1).wait_for_publish(5)
        out, err = watch.communicate(timeout=30)
    finally:
        watch.kill()
        box.loop_stop()
    assert watch.returncode == 0, err
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["panic", "alert_state", "device", "alert"]
    for shown in ("PANIC", "STATE", "DEVICE", "ALERT", "BOX"):
        assert shown not in err, err
