"""Alerts name their subject (issue 17, the integrator and the duty officer): the box fills the alert's
`subject_name`, `subject_category` and `subject_priority` from the list entry it holds (a face enrolled
on the box has at most a name), the centre stores them and the console's API returns them, and an
alert from a box that sends none of them is still accepted. In process: a real list store, the camera
pipeline with stand-ins for the detector and embedder, the centre's store and the console's API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from centre.auth import hash_password
from centre.config import CentreConfig, ConsoleConfig
from centre.console import Console
from centre.web import create_app
from edge.alerts import build_plate_alert
from edge.config import BoxConfig, GateboxConfig
from edge.pipeline import CameraPipeline, Models
from edge.plates.matcher import PlateMatch
from edge.plates.stage import PlateDecision
from edge.protocol.alert import Alert
from edge.protocol.bundle import ListEntry
from edge.protocol.embedding import DLIB_EMBEDDER
from edge.protocol.mqtt import BrokerConfig
from edge.store.lists import ListStore
from edge.types import Frame
from tests.support.alerts import sample_alert
from tests.support.broker import free_port
from tests.support.console import CSRF_HEADER
from tests.support.synthetic_faces import ENROLLED, BlueFace, Recognised, image

LONG_NAME = "Li " + "X" * 300  # `gatebox enroll --name` takes any length; an alert carries 200 characters


def _store_with(data_dir: Path, how: str) -> None:
    """The subject `s-1` on the watchlist: from the centre (name, category, priority), or enrolled here."""
    with closing(ListStore(data_dir)) as store:
        if how == "centre":
            entry = ListEntry(subject_id="s-1", name="Li Xiulan", category="dementia", priority=7, embeddings=1)
            store.apply_update("watchlist", 4, None, [entry], ENROLLED[None, :])
        else:
            name = {"local with a name": "Li Xiulan", "local without one": None, "local, long name": LONG_NAME}[how]
            store.enroll("watchlist", "s-1", name, ENROLLED[None, :], ["photo.jpg"])


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("centre", ("Li Xiulan", "dementia", 7, "v4")),
        ("local with a name", ("Li Xiulan", None, None, "local")),
        ("local without one", (None, None, None, "local")),
        ("local, long name", (LONG_NAME[:200], None, None, "local")),
    ],
)
def test_a_box_alert_names_its_listed_subject(tmp_path: Path, how: str, expected: tuple) -> None:
    _store_with(tmp_path, how)
    with closing(ListStore(tmp_path)) as store:
        gallery = store.gallery(["watchlist"], DLIB_EMBEDDER)
    config = GateboxConfig.model_validate({"lists": {"watchlist": "alert"}, "motion": {"enabled": False},
                                           "detector": {"every_n_frames": 1},
                                           "recognition": {"embedding_workers": 0}})  # fmt: skip
    embedder = Recognised()
    embedder.recognisable = True
    pipeline = CameraPipeline(config, Models(BlueFace(), embedder), gallery)  # type: ignore[arg-type]
    try:
        alerts = [a for i in range(10) for a in pipeline.process(Frame("gate", i, 1e9 + i, image(100 + i))).alerts]
    finally:
        pipeline.close()
    (alert,) = alerts
    assert (alert.subject_id, alert.subject_name, alert.subject_category, alert.subject_priority,
            alert.list_version) == ("s-1", *expected)  # fmt: skip
    assert Alert.model_validate_json(alert.to_json()) == alert  # within the model's bounds on the wire


def test_a_plate_alert_names_its_listed_vehicle(tmp_path: Path) -> None:
    with closing(ListStore(tmp_path)) as store:
        entry = ListEntry(subject_id="car-7", name="Blue delivery van", category="theft", priority=3, plate="粤B12345")
        store.apply_update("plate_watchlist", 2, None, [entry], np.empty((0, 0), np.float32), embedder=None)
        gallery = store.gallery(["watchlist", "plate_watchlist"], DLIB_EMBEDDER)
    decision = PlateDecision("gate", 5, 1e9, 3, (10, 10, 146, 46), np.full((36, 136, 3), 200, np.uint8), "粤B12345",
                             0.9, 3, PlateMatch("plate_watchlist", "car-7", "v2", "粤B12345", 0))  # fmt: skip
    alert = build_plate_alert(BoxConfig(), decision, gallery.subjects)
    assert (alert.subject_name, alert.subject_category, alert.subject_priority) == ("Blue delivery van", "theft", 3)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Console]]:
    """The console, logged in; its broker is nowhere (the console serves its pages regardless)."""
    config = CentreConfig(broker=BrokerConfig(port=free_port(), topic_prefix="subjects"))
    console = Console(config, ConsoleConfig(db=tmp_path / "centre.sqlite3", client_id="subjects-test"), None)
    try:
        console.store.set_operator("op1", hash_password("correct horse battery"))
        with TestClient(create_app(console), headers={CSRF_HEADER: "1"}) as client:
            assert client.post("/api/login", json={"name": "op1", "password": "correct horse battery"}).is_success
            yield client, console
    finally:
        console.close()


def test_the_centre_stores_the_subject_and_the_console_returns_it(api: tuple[TestClient, Console]) -> None:
    client, console = api
    named = sample_alert("e-named", "missing_elders", site="north", box_id="g2", subject_id="elder-0042",
                         subject_name="Li Xiulan", subject_category="dementia", subject_priority=9)  # fmt: skip
    console.store.ingest("gatebox/north/g2/alert", named.to_json().encode())
    (event,) = client.get("/api/events").json()["events"]
    assert (event["subject_id"], event["subject_name"], event["subject_category"], event["subject_priority"]) == (
        "elder-0042", "Li Xiulan", "dementia", 9)  # fmt: skip
    one = client.get("/api/events/e-named").json()
    assert (one["subject_name"], one["subject_category"], one["subject_priority"]) == ("Li Xiulan", "dementia", 9)


def test_an_alert_from_an_older_box_without_them_is_still_accepted(api: tuple[TestClient, Console]) -> None:
    client, console = api
    old = {  # what a box before these fields sent: no subject_name, subject_category or subject_priority
        "schema": "gatebox.alert/1", "event_id": "e-old", "kind": "face_match", "list": "watchlist",
        "list_version": "v3", "subject_id": "s-9", "site": "north", "box_id": "g1", "camera": "gate",
        "ts": datetime(2026, 11, 30, 8, tzinfo=timezone.utc).isoformat(), "frame": 12, "track_id": 3, "score": 0.6,
        "distance": 0.4, "matching_frames": 3, "bbox": [1, 2, 3, 4], "snapshot_jpeg_b64": "/9j/AA==",
    }  # fmt: skip
    ingested = console.store.ingest("gatebox/north/g1/alert", json.dumps(old).encode())
    assert (ingested.kind, ingested.new) == ("alert", True)
    (event,) = client.get("/api/events").json()["events"]
    assert (event["event_id"], event["subject_name"], event["subject_category"], event["subject_priority"]) == (
        "e-old", None, None, None)  # fmt: skip


@pytest.mark.parametrize(
    ("field", "within", "past"),
    [("subject_name", "x" * 200, "x" * 201), ("subject_category", "c" * 32, "c" * 33), ("subject_priority", 9, 10),
     ("subject_priority", 0, -1)],
)  # fmt: skip
def test_the_subject_fields_are_bounded_as_list_entries_are(field: str, within: Any, past: Any) -> None:
    assert getattr(sample_alert("e1", **{field: within}), field) == within
    with pytest.raises(ValueError, match=field):
        sample_alert("e1", **{field: past})
