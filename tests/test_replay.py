"""End to end: enrol two people from one frame of the crowd clip, replay it, and check the alerts
in the events file and at a real MQTT subscriber (issue 2, tests 1 and 3)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge.protocol.alert import Alert
from tests.conftest import run_cli
from tests.support import crowd
from tests.support.broker import Mosquitto
from tests.support.enrolled import EnrolledData
from tests.support.mqtt import Collector


@dataclass(frozen=True)
class CrowdReplay:
    events: list[dict]
    received: list[bytes]
    stdout: str
    stderr: str
    data_dir: Path


@pytest.fixture(scope="module")
def crowd_replay(
    tmp_path_factory: pytest.TempPathFactory, crowd_clip: Path, broker: Mosquitto, enrolled_data: EnrolledData
) -> CrowdReplay:
    work = tmp_path_factory.mktemp("crowd")
    config = work / "gatebox.yaml"
    config.write_text(f"box: {{site: s1, box_id: crowd}}\nbroker: {{port: {broker.port}}}\n")
    enrolled_data.copy(work / "box")
    collector = Collector(broker.port, "gatebox/s1/crowd/alert", receipts=True)
    try:
        result = run_cli("--config", config, "--data-dir", work / "box", "replay", crowd_clip,
                         "--events", work / "events.jsonl")  # fmt: skip
        assert result.returncode == 0, result.stderr
        events = [json.loads(line) for line in (work / "events.jsonl").read_text().splitlines()]
        received: list[bytes] = []
        for _ in events:
            received.append(bytes(collector.next(timeout=10).payload))
    finally:
        collector.close()
    return CrowdReplay(events, received, result.stdout, result.stderr, work / "box")


def test_each_enrolled_person_alerts_exactly_once_and_nobody_else(crowd_replay: CrowdReplay) -> None:
    subjects = sorted((e["list"], e["subject_id"]) for e in crowd_replay.events)
    assert subjects == [("missing_elders", "woman"), ("watchlist", "boy")]


@pytest.mark.parametrize("subject", sorted(crowd.ENROL_LISTS))
def test_alert_is_on_the_right_face(crowd_replay: CrowdReplay, subject: str) -> None:
    (event,) = [e for e in crowd_replay.events if e["subject_id"] == subject]
    cx, cy, width = crowd.position(subject, event["frame"])
    x1, y1, x2, y2 = event["bbox"]
    assert abs((x1 + x2) / 2 - cx) < 0.6 * width and abs((y1 + y2) / 2 - cy) < 0.6 * width, event["bbox"]
    assert event["track_id"] >= 1 and event["matching_frames"] >= 1 and 0 < event["score"] <= 1


def test_published_alerts_match_the_events_file_and_the_schema(crowd_replay: CrowdReplay) -> None:
    published = sorted((json.loads(p) for p in crowd_replay.received), key=lambda a: a["event_id"])
    for alert in published:  # stamped on sending: the box's clock and how long the alert waited
        sent_at, age = datetime.fromisoformat(alert.pop("sent_at")), alert.pop("age_s")
        assert 0 <= age < 30 and abs((datetime.now(timezone.utc) - sent_at).total_seconds()) < 300
    recorded = [{k: v for k, v in e.items() if k not in ("sent_at", "age_s")} for e in crowd_replay.events]
    assert published == sorted(recorded, key=lambda a: a["event_id"])
    for payload in crowd_replay.received:
        alert = Alert.model_validate_json(payload)
        assert alert.schema_ == "gatebox.alert/1" and alert.kind == "face_match"
        assert (alert.site, alert.box_id, alert.camera) == ("s1", "crowd", "crowd_toward_camera")
        offset = alert.ts.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
        assert alert.snapshot_jpeg_b64.startswith("/9j/")  # base64 of a JPEG's FF D8 FF
    assert len({a["event_id"] for a in crowd_replay.events}) == len(crowd_replay.events)


def test_replay_prints_a_one_line_summary(crowd_replay: CrowdReplay) -> None:
    (line,) = crowd_replay.stdout.strip().splitlines()
    assert line.startswith("replay: 105 frames in ") and "2 alert(s), 2 confirmed by the centre" in line


@pytest.mark.parametrize(
    ("truth", "flags", "exit_code", "expected"),
    [
        ("boy,0,104\nwoman,0,87\n", ["--fail-on-miss"], 0, "score: 2/2 alerted, 0 false alert(s)"),
        ("boy,0,104\nghost,0,40\n", [], 0, "ghost                MISSED"),
        ("boy,0,104\nghost,0,40\n", ["--fail-on-miss"], 1, "score: 1/2 alerted, 1 false alert(s)"),
    ],
)
def test_replay_scores_against_truth(
    tmp_path: Path, crowd_replay: CrowdReplay, crowd_clip: Path, truth: str, flags: list[str], exit_code: int,
    expected: str,
) -> None:  # fmt: skip
    truth_file = tmp_path / "truth.csv"
    truth_file.write_text("subject_id,first_frame,last_frame\n" + truth)
    result = run_cli("--data-dir", crowd_replay.data_dir, "replay", crowd_clip, "--no-publish", "--end-frame", "41",
                     "--truth", truth_file, *flags)  # fmt: skip
    assert result.returncode == exit_code, result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stderr
