"""Plates on a list alert once per pass (issue 7): a real CCPD scene moved across the frames of a
composed clip stands in for a car driving past the gate camera."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.plates.matcher import ListedPlate, PlateMatch, PlateMatcher, distance
from edge.protocol.bundle import ListEntry
from edge.store.lists import ListStore
from tests.conftest import run_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.mqtt import Collector, went_offline


@pytest.fixture(scope="module")
def passing_car(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    scene = cv2.imread(str(shared_data / "plates_cn" / "ccpd" / "ccpd_00.jpg"))  # 720x1160, plate 皖AYL375
    scene = cv2.resize(scene, None, fx=0.6, fy=0.6)
    height, width = scene.shape[:2]
    clip = tmp_path_factory.mktemp("plates") / "car.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (1280, height))
    for i in range(45):
        frame = np.full((height, 1280, 3), 90, np.uint8)
        x = 40 + 14 * i  # the car drives from left to right
        frame[:, x : x + width] = scene
        writer.write(frame)
    writer.release()
    return clip


@pytest.mark.slow  # the CLI on a real clip
@pytest.mark.parametrize(("listed", "fuzzy"), [("皖AYL375", False), ("皖AYL37S", True)])
def test_listed_plate_alerts_once_per_pass(tmp_path: Path, passing_car: Path, listed: str, fuzzy: bool) -> None:
    store = ListStore(tmp_path / "box")
    entry = ListEntry(subject_id="car-7", plate=listed, name="stolen car")
    store.apply_update("plate_watchlist", 3, None, [entry], np.empty((0, 128), np.float32))
    store.close()
    config = write_config(tmp_path / "box.yaml", plates={"enabled": True})
    events = tmp_path / "events.jsonl"
    result = run_cli("--config", config, "--data-dir", tmp_path / "box", "replay", passing_car, "--no-publish",
                     "--events", events)  # fmt: skip
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert (alert["kind"], alert["list"], alert["list_version"], alert["subject_id"]) == (
        "plate_match", "plate_watchlist", "v3", "car-7")  # fmt: skip
    assert (alert["plate"], alert["plate_read"], alert["fuzzy"]) == (listed, "皖AYL375", fuzzy)
    assert alert["matching_frames"] >= 2 and alert["snapshot_jpeg_b64"] and alert["plate_colour"] == "blue"


@pytest.mark.parametrize(
    ("read", "listed", "expected"),
    [("粤B12345", "粤B12345", 0.0), ("粤B1234S", "粤B12345", 0.5), ("粤B8Z0DS", "粤BB2Q05", 2.5),
     ("粤B12345", "粤B12346", 1.0), ("粤B1234", "粤B12345", float("inf"))],
)  # fmt: skip
def test_confusable_distance(read: str, listed: str, expected: float) -> None:
    assert distance(read, listed) == expected


def test_matcher_prefers_exact_and_respects_the_limit() -> None:
    matcher = PlateMatcher(
        {"粤B12345": ListedPlate("plate_watchlist", "a", "v1"), "粤B1234S": ListedPlate("plate_watchlist", "b", "v1")},
        0.5,
    )
    exact = matcher.match("粤B12345")
    assert exact is not None and exact.subject_id == "a" and not exact.fuzzy
    assert matcher.match("粤B1Z345") == PlateMatch("plate_watchlist", "a", "v1", "粤B12345", 0.5)  # Z read for 2
    assert matcher.match("粤B99999") is None


def test_every_vehicle_gets_a_passage_record_with_its_direction(
    tmp_path: Path, passing_car: Path, broker: Mosquitto
) -> None:
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "s1", "box_id": "passages"},
        broker={"port": broker.port},
        plates={"enabled": True, "passages": True},
        cameras=[{"name": "gate", "url": str(passing_car),
                  "gate_line": {"start": [0.5, 0.0], "end": [0.5, 1.0], "outside": [1.0, 0.5]}}],
    )  # fmt: skip
    centre = Collector(broker.port, "gatebox/s1/passages/passage", "gatebox/s1/passages/availability")
    try:
        result = run_cli("--config", config, "--data-dir", tmp_path / "box", "replay", passing_car, "--camera", "gate")
        assert result.returncode == 0, result.stderr
        sent = centre.until(went_offline, 30, "the box's offline, after all it sent")
        (passage,) = [json.loads(m.payload) for m in sent if m.topic.endswith("/passage")]
    finally:
        centre.close()
    assert (passage["plate"], passage["colour"], passage["direction"], passage["camera"]) == (
        "皖AYL375",
        "blue",
        "out",
        "gate",
    )  # not on any list, still logged; it drove out across the line
