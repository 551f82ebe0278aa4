"""Commands from the centre (issue 4, tests 5 and 6): garbage on the box's command and receipt
topics is counted and logged and changes nothing; a signed ack from `gatebox centre ack` moves the
alert to acked, then closed, and the box reports it."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol.signing import generate_keypair, load_private_key, seal
from tests.conftest import run_cli, start_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.enrolled import EnrolledData
from tests.support.mqtt import Collector


def next_matching(collector: Collector, leaf: str, timeout: float, predicate=lambda body: True) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in collector.drain(0.3):
            if message.topic.endswith("/" + leaf):
                body = json.loads(message.payload)
                if predicate(body):
                    return body
    raise AssertionError(f"no {leaf} message in {timeout} s")


def test_garbage_is_counted_and_a_signed_ack_round_trips(
    tmp_path: Path, broker: Mosquitto, crowd_clip: Path, enrolled_data: EnrolledData
) -> None:
    keys = tmp_path / "keys"
    assert run_cli("centre", "keygen", "--out", keys).returncode == 0
    centre_key, public_key = keys / "centre_ed25519.pem", keys / "centre_ed25519.pub.pem"
    generate_keypair(tmp_path / "intruder.pem", tmp_path / "intruder.pub.pem")
    data = enrolled_data.copy(tmp_path / "box", {"boy": "watchlist"})
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "s1", "box_id": "cmdbox"},
        broker={"port": broker.port, "keepalive_s": 5},
        link={"centre_public_key": str(public_key), "heartbeat_interval_s": 1, "max_inbound_bytes": 65536},
        cameras=[{"name": "gate", "url": str(crowd_clip)}],
    )
    centre = Collector(broker.port, "gatebox/s1/cmdbox/#", receipts=True)
    box = start_cli("--config", config, "--data-dir", data, "run", log=tmp_path / "run.log")
    sender = mqtt.Client(CallbackAPIVersion.VERSION2)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    log = lambda: (tmp_path / "run.log").read_text()  # noqa: E731
    try:
        alert = next_matching(centre, "alert", 90)
        command = {"command": "ack_alert", "event_id": alert["event_id"], "state": "acked",
                   "issued_at": datetime.now(timezone.utc).isoformat()}  # fmt: skip
        garbage = {
            "cmd": [
                b"{not json",
                b"x" * (10 * 1024 * 1024),
                seal({**command, "surprise": 1}, load_private_key(centre_key)),  # unknown field
                seal({**command, "state": 42}, load_private_key(centre_key)),  # wrong type
                seal(command, load_private_key(tmp_path / "intruder.pem")),  # signed by someone else
                json.dumps(command).encode(),  # unsigned
            ],
            "receipt": [json.dumps({"event_ids": "all"}).encode()],
        }
        for leaf, payloads in garbage.items():
            for payload in payloads:
                sender.publish(f"gatebox/s1/cmdbox/{leaf}", payload, qos=1).wait_for_publish(10)
        expected = {"bad_signature": 3, "oversized": 1, "invalid_command": 2, "invalid_receipt": 1}
        beat = next_matching(centre, "heartbeat", 20, lambda b: b["bad_input"] == expected)
        assert box.poll() is None and "Traceback" not in log()

        ack = run_cli("centre", "ack", alert["event_id"], "--box", "s1/cmdbox", "--note", "patrol sent",
                      "--by", "op7", "--key", centre_key, "--port", str(broker.port))  # fmt: skip
        assert ack.returncode == 0, ack.stderr
        state = next_matching(centre, "alert_state", 20)
        assert (state["event_id"], state["state"], state["by"]) == (alert["event_id"], "acked", "op7")
        snapshot = data / "snapshots" / f"{alert['event_id']}.jpg"
        assert snapshot.exists()
        run_cli("centre", "ack", alert["event_id"], "--box", "s1/cmdbox", "--close", "--key", centre_key,
                "--port", str(broker.port))  # fmt: skip
        assert next_matching(centre, "alert_state", 20)["state"] == "closed"
        assert not snapshot.exists()  # a closed alert's face is not kept
        assert beat["cameras"]["gate"]["frames"] > 0 and beat["outbox"]["depth"] >= 0 and beat["version"]
    finally:
        box.send_signal(signal.SIGTERM)
        assert box.wait(60) == 0
        sender.loop_stop()
        centre.close()
    listed = run_cli("--data-dir", data, "alerts").stdout
    assert f"{alert['event_id']}\tclosed\twatchlist/boy\tgate" in listed and "patrol sent" in listed
    assert log().count("rejected message on gatebox/s1/cmdbox/") == 7
