"""`gatebox centre watch` shows box availability and alerts once each, confirms every alert to its
box with a receipt, and skips malformed payloads."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol.alert import Alert
from tests.conftest import REPO, write_config
from tests.support.broker import Mosquitto


def alert(event_id: str) -> Alert:
    return Alert(
        event_id=event_id, kind="face_match", list="missing_elders", subject_id="elder-17", site="north",
        box_id="g2", camera="main_gate", ts=datetime(2026, 11, 30, 8, 15, tzinfo=timezone.utc), frame=412,
        track_id=9, score=0.58, distance=0.42, matching_frames=3, bbox=(10, 20, 90, 100),
        snapshot_jpeg_b64="/9j/AA==",
    )  # fmt: skip


def test_watch_shows_each_alert_once_confirms_it_and_survives_bad_payloads(tmp_path: Path, broker: Mosquitto) -> None:
    config = write_config(tmp_path / "centre.yaml", broker={"port": broker.port, "topic_prefix": "watchtest"})
    receipts: queue.Queue[bytes] = queue.Queue()
    box = mqtt.Client(CallbackAPIVersion.VERSION2)
    box.on_message = lambda c, u, m: receipts.put(bytes(m.payload))
    box.connect("127.0.0.1", broker.port)
    box.subscribe("watchtest/north/g2/receipt", qos=1)
    box.loop_start()
    box.publish("watchtest/north/g2/availability", "online", qos=1, retain=True).wait_for_publish(5)
    watch = subprocess.Popen(
        [sys.executable, "-m", "edge", "--config", str(config), "centre", "watch", "--count", "2",
         "--timeout", "30", "--snapshots", str(tmp_path / "snaps")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert watch.stdout is not None  # stdout=PIPE
    try:
        assert watch.stdout.readline().strip() == "BOX north/g2 online"  # subscribed: retained state shown
        for payload in ["{not json", json.dumps({"schema": "gatebox.alert/1"}), alert("e1").to_json(),
                        alert("e1").to_json(), alert("e2").to_json()]:  # fmt: skip
            box.publish("watchtest/north/g2/alert", payload, qos=1).wait_for_publish(5)
        out, err = watch.communicate(timeout=30)
        confirmed = [json.loads(receipts.get(timeout=5))["event_ids"] for _ in range(3)]
    finally:
        watch.kill()
        box.loop_stop()
    assert watch.returncode == 0, err
    assert out.strip().splitlines() == [
        "ALERT 2026-11-30T08:15:00+00:00 north/g2/main_gate list=missing_elders subject=elder-17 "
        f"score=0.58 frame=412 track=9 event={event}"
        for event in ("e1", "e2")
    ]  # the re-sent e1 is confirmed again but shown once
    assert confirmed == [["e1"], ["e1"], ["e2"]]
    assert err.count("warning: skipped malformed alert on watchtest/north/g2/alert") == 2
    assert (tmp_path / "snaps" / "e1.jpg").read_bytes() == b"\xff\xd8\xff\x00"
