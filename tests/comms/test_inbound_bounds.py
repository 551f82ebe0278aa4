"""Inbound bounds on the box's link (issue 13, item 14): JSON nested 30,000 deep on `cmd` or
`receipt` is refused and counted as `too_deep`, with no RecursionError traceback, and the link
goes on taking commands; a message whose handling raises is counted, not fatal. The bounded JSON
helper (edge/comms/bounded_json.py) refuses by size, depth and strictness in linear time."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.box import mqtt_link
from edge.comms.commands import CommandChannel
from edge.comms.delivery import Delivery
from edge.comms.link import Link
from edge.comms.outbox import Outbox
from edge.config import BoxConfig, GateboxConfig
from edge.protocol.bounded_json import JsonRefused, json_depth, parse_bounded_json
from edge.protocol.messages import AckAlert
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.signing import generate_keypair, load_private_key, load_public_key, seal
from tests.support.broker import Mosquitto
from tests.support.waiting import wait_for

DEEP = b"[" * 30_000 + b"]" * 30_000  # 60 kB: under the default 64 kB limit, so only depth refuses it

# -- the helper -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [(b"1", 0), (b"{}", 1), (b'{"a":[1,{"b":[]}]}', 4), (b'["[[[[", "]"]', 1), (rb'["\"[[", {"x": "\\"}]', 2),
     (b'"unterminated [[[', 0), (DEEP, 30_000)],
)  # fmt: skip
def test_depth_counts_brackets_outside_strings(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"x" * 101, "oversized"), (b"[[[[1]]]]", "too_deep"), (b"{not json", "malformed"), (b"[1e400]", "malformed"),
     (b"[NaN]", "malformed"), (b"[Infinity]", "malformed"), (b"\xff", "malformed"), (b"9" * 99, "malformed")],
)  # fmt: skip
def test_parse_bounded_json_refuses_by_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(JsonRefused) as refused:
        parse_bounded_json(payload, max_bytes=100, max_depth=3, max_int_digits=40)
    assert refused.value.reason == reason and isinstance(refused.value, ValueError)


def test_parse_bounded_json_returns_what_is_within_bounds() -> None:
    assert parse_bounded_json('{"a": [1, 2.5, "]]"]}', max_bytes=100, max_depth=2) == {"a": [1, 2.5, "]]"]}


@pytest.mark.parametrize("hostile", [b'"\\' * 32_000, b'"' * 64_000, b'["' + b"\\" * 64_000, b"[" * 64_000])
def test_the_depth_scan_is_linear_on_hostile_input(hostile: bytes) -> None:
    started = time.perf_counter()
    json_depth(hostile)
    assert time.perf_counter() - started < 0.5  # a backtracking scan takes minutes on `"\"\"\"…`


# -- the link -------------------------------------------------------------------------------------


@pytest.fixture
def link(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[Link, list[AckAlert], mqtt.Client, Path]]:
    generate_keypair(tmp_path / "centre.pem", tmp_path / "centre.pub.pem")
    config = GateboxConfig(box=BoxConfig(site="s1", box_id=box_id(tmp_path)),
                           broker=BrokerConfig(port=broker.port, keepalive_s=5, reconnect_max_s=1))  # fmt: skip
    commands: list[AckAlert] = []

    def on_command(command: AckAlert) -> None:
        commands.append(command)
        if command.note == "raise":
            raise RuntimeError("the handler failed")

    outbox = Outbox(tmp_path / "outbox.sqlite3", 10**8)
    centre_link = mqtt_link(config)
    delivery = Delivery(config, outbox, centre_link)  # the receipts
    CommandChannel(config, load_public_key(tmp_path / "centre.pub.pem"), centre_link).register("ack_alert", on_command)
    delivery.start()
    centre_link.start()
    sender = mqtt.Client(CallbackAPIVersion.VERSION2)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    assert centre_link.wait_connected(10)
    yield centre_link, commands, sender, tmp_path
    sender.loop_stop()
    delivery.close()
    centre_link.close()
    outbox.close()


def box_id(tmp_path: Path) -> str:
    return f"deep-{tmp_path.name[-6:]}"


def subscribed(commands: list[AckAlert], sender: mqtt.Client, key: Path) -> None:
    """Until the link takes commands (its subscription is in place)."""
    topic = f"gatebox/s1/{box_id(key.parent)}/cmd"
    deadline = time.monotonic() + 10
    while not commands and time.monotonic() < deadline:
        sender.publish(topic, signed_ack(key, "probe"), qos=1).wait_for_publish(5)
        time.sleep(0.2)
    assert commands, "the link never took a command"


def notes(commands: list[AckAlert]) -> list[str | None]:
    return [c.note for c in commands if c.note != "probe"]


def signed_ack(key_path: Path, note: str) -> bytes:
    body = {"command": "ack_alert", "event_id": "e1", "state": "acked", "note": note,
            "issued_at": datetime.now(timezone.utc).isoformat()}  # fmt: skip
    return seal(body, load_private_key(key_path))


def test_deeply_nested_json_on_cmd_and_receipt_is_refused_and_counted(link, caplog: pytest.LogCaptureFixture) -> None:
    centre_link, commands, sender, tmp_path = link
    topic = f"gatebox/s1/{box_id(tmp_path)}"

    def send(leaf: str, payload: bytes) -> None:
        sender.publish(f"{topic}/{leaf}", payload, qos=1).wait_for_publish(5)

    subscribed(commands, sender, tmp_path / "centre.pem")
    with caplog.at_level(logging.DEBUG):
        send("cmd", DEEP)
        send("receipt", b'{"event_ids": ' + DEEP + b"}")
        send("cmd", json.dumps({"body": "x", "sig": "y", "pad": json.loads(b"[" * 500 + b"]" * 500)}).encode())
        send("cmd", signed_ack(tmp_path / "centre.pem", "after"))
        wait_for(lambda: notes(commands) == ["after"], 10, "the command after the deep ones")
    assert dict(centre_link.bad_input) == {"too_deep": 3}
    assert not [r for r in caplog.records if r.exc_info]  # refused, not crashed: no traceback


def test_a_message_whose_handling_raises_is_counted_and_the_link_goes_on(link) -> None:
    centre_link, commands, sender, tmp_path = link
    topic = f"gatebox/s1/{box_id(tmp_path)}/cmd"
    subscribed(commands, sender, tmp_path / "centre.pem")
    for note in ("raise", "next"):
        sender.publish(topic, signed_ack(tmp_path / "centre.pem", note), qos=1).wait_for_publish(5)
    wait_for(lambda: notes(commands) == ["raise", "next"], 10, "the command after the failing one")
    assert dict(centre_link.bad_input) == {"failed": 1}
