"""`gatebox centre watch` shows box availability and alerts, and skips malformed payloads."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.alerts import Alert
from tests.conftest import REPO
from tests.support.broker import Mosquitto

ALERT = Alert(
    event_id="e1", kind="face_match", list="missing_elders", subject_id="elder-17", site="north", box_id="g2",
    camera="main_gate", ts=datetime(2026, 11, 30, 8, 15, tzinfo=timezone.utc), frame=412, track_id=9,
    score=0.58, distance=0.42, matching_frames=3, bbox=(10, 20, 90, 100), snapshot_jpeg_b64="/9j/AA==",
)  # fmt: skip


def test_watch_prints_availability_and_alerts_and_survives_bad_payloads(tmp_path: Path, broker: Mosquitto) -> None:
    box = mqtt.Client(CallbackAPIVersion.VERSION2)
    box.connect("127.0.0.1", broker.port)
    box.loop_start()
    box.publish("gatebox/north/g2/availability", "online", qos=1, retain=True).wait_for_publish(5)
    watch = subprocess.Popen(
        [sys.executable, "-m", "edge", "centre", "watch", "--port", str(broker.port), "--count", "1",
         "--timeout", "30", "--snapshots", str(tmp_path / "snaps")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert watch.stdout.readline().strip() == "BOX north/g2 online"  # subscribed: retained state shown
        box.publish("gatebox/north/g2/alert", "{not json", qos=1).wait_for_publish(5)
        box.publish("gatebox/north/g2/alert", json.dumps({"schema": "gatebox.alert/1"}), qos=1).wait_for_publish(5)
        box.publish("gatebox/north/g2/alert", ALERT.to_json(), qos=1).wait_for_publish(5)
        out, err = watch.communicate(timeout=30)
    finally:
        watch.kill()
        box.loop_stop()
    assert watch.returncode == 0, err
    assert out.strip() == (
        "ALERT 2026-11-30T08:15:00+00:00 north/g2/main_gate list=missing_elders subject=elder-17 "
        "score=0.58 frame=412 track=9 event=e1"
    )
    assert err.count("warning: skipped malformed alert on gatebox/north/g2/alert") == 2
    assert (tmp_path / "snaps" / "e1.jpg").read_bytes() == b"\xff\xd8\xff\x00"
