"""The console's Preview button and panic receiver states (issue 17), in process through its HTTP API
(FastAPI's TestClient; no broker: what the console would publish is handed to a box on an `InMemoryLink`,
and what that box answers is handed back): the operator asks → a signed `preview` command → the box draws
its camera → the console keeps the latest per box and camera (in memory, bounded), serves it, and refuses
a preview whose body names another box than its topic. The Boxes table's data says each panic receiver's
state. The page itself is driven in Chromium by `test_console_preview_browser.py`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from centre.config import CentreConfig, ConsoleConfig
from centre.console import Console
from centre.previews import Previews
from centre.web import create_app
from edge.box import Box
from edge.comms.link import InMemoryBroker, InMemoryLink
from edge.config import GateboxConfig
from edge.protocol.messages import CameraPreview, Heartbeat, ReceiverReport
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.wire import Refused
from edge.remote_preview import serve_previews
from edge.sources.latest import LatestFrames
from edge.types import Frame
from tests.support.broker import free_port
from tests.support.console import in_process_console, operator_client
from tests.support.waiting import wait_for

SITE, BOX, OTHER = "maple-court", "east-gate", "north-gate"
TAKEN_AT = 1_764_600_000.0


def jpeg(shade: int = 90) -> bytes:
    return cv2.imencode(".jpg", np.full((90, 160, 3), shade, np.uint8))[1].tobytes()


def preview_body(box: str = BOX, camera: str | None = "gate", shade: int = 90, **fields: object) -> bytes:
    status = "ok" if camera else "no_camera"
    return CameraPreview.model_validate({
        "site": SITE, "box_id": box, "camera": camera, "status": status, "request_id": "r1",
        "taken_at": TAKEN_AT if camera else None, "width": 160 if camera else None, "height": 90 if camera else None,
        "image_jpeg_b64": base64.b64encode(jpeg(shade)).decode() if camera else None, **fields,
    }).model_dump_json(by_alias=True).encode()  # fmt: skip


def heartbeat(box: str = BOX, **fields: object) -> bytes:
    return Heartbeat.model_validate({"site": SITE, "box_id": box, **fields}).model_dump_json(by_alias=True).encode()


@pytest.fixture
def console(tmp_path: Path, keys: tuple[Path, Path]) -> Iterator[Console]:
    settings = ConsoleConfig(db=tmp_path / "centre" / "centre.sqlite3", client_id="preview")
    with in_process_console(CentreConfig(broker=BrokerConfig(port=free_port())), settings, keys[0]) as console:
        yield console


@pytest.fixture
def api(console: Console) -> Iterator[TestClient]:
    with operator_client(console) as client:
        yield client


class Published:
    """What the console's MQTT client was asked to publish (it has no broker here)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes, qos: int = 0) -> object:
        self.messages.append((topic, payload))
        return self

    def wait_for_publish(self, timeout: float) -> None:
        pass

    def is_published(self) -> bool:
        return True


@pytest.fixture
def published(console: Console, monkeypatch: pytest.MonkeyPatch) -> Published:
    """The console as if connected to its broker, its publications kept."""
    sent = Published()
    monkeypatch.setattr(console._client, "publish", sent)
    monkeypatch.setattr(Console, "broker_connected", property(lambda self: True))
    return sent


def test_an_operator_asks_a_box_and_sees_its_camera_drawn(
    console: Console, api: TestClient, published: Published, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    console.store.ingest(f"gatebox/{SITE}/{BOX}/heartbeat", heartbeat())  # the box is known
    asked = api.post(f"/api/boxes/{SITE}/{BOX}/preview", json={})
    assert asked.status_code == 202, asked.text
    ((topic, command),) = published.messages
    assert topic == f"gatebox/{SITE}/{BOX}/cmd"

    # The box (in this process) takes the signed command and draws its camera's newest frame.
    config = GateboxConfig.model_validate({
        "box": {"site": SITE, "box_id": BOX}, "link": {"centre_public_key": str(keys[1])},
        "cameras": [{"name": "gate", "url": "rtsp://cam/gate",
                     "gate_line": {"start": [0.1, 0.7], "end": [0.9, 0.7], "outside": [0.5, 0.9]}}],
    })  # fmt: skip
    broker = InMemoryBroker()
    centre = InMemoryLink(broker, "centre")
    answers: list[tuple[str, bytes]] = []
    centre.route("gatebox/+/+/preview", lambda t, p: answers.append((t, p)))
    centre.start()
    box = Box(config, tmp_path / "box", link=InMemoryLink(broker, "box"))
    frames = LatestFrames()
    frames.put(Frame("gate", 7, TAKEN_AT, np.full((480, 640, 3), 70, np.uint8)))
    previews = serve_previews(box, frames.frame)
    try:
        centre.publish(topic, command)
        wait_for(lambda: answers, 20, "the box's preview")
    finally:
        previews.close()
        box.close()
        centre.close()
    marked: list[str] = []
    console.changes.mark = lambda kind, urgent=False, **flags: marked.append(kind)  # type: ignore[method-assign]
    console._keep_preview(*answers[0])
    assert marked == ["previews"]  # the open pages are told

    (shown,) = api.get(f"/api/boxes/{SITE}/{BOX}/previews").json()["previews"]
    assert (shown["camera"], shown["status"], shown["taken_at"], shown["has_image"]) == ("gate", "ok", TAKEN_AT, True)
    assert shown["request_id"] == json.loads(json.loads(command)["body"])["request_id"]
    assert any(line.startswith("gate line: start [0.1, 0.7]") for line in shown["summary"])
    assert shown["received_at"] >= asked.json()["requested_at"]  # newer than the request: the page shows it as fresh
    image = api.get(f"/api/boxes/{SITE}/{BOX}/previews/gate.jpg")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert base64.b64encode(image.content).decode() == json.loads(answers[0][1])["image_jpeg_b64"]


def test_asking_a_box_never_heard_from_or_without_the_broker_or_a_key_is_refused(
    console: Console, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.post(f"/api/boxes/{SITE}/nowhere/preview", json={}).status_code == 404
    console.store.ingest(f"gatebox/{SITE}/{BOX}/heartbeat", heartbeat())
    down = api.post(f"/api/boxes/{SITE}/{BOX}/preview", json={})
    assert down.status_code == 503 and "not connected to the broker" in down.json()["detail"]
    assert api.post(f"/api/boxes/{SITE}/{BOX}/preview", json={"camera": "../x"}).status_code == 422
    with TestClient(create_app(console)) as anonymous:
        assert anonymous.post(f"/api/boxes/{SITE}/{BOX}/preview", json={}).status_code in (401, 403)
        assert anonymous.get(f"/api/boxes/{SITE}/{BOX}/previews").status_code == 401
    monkeypatch.setattr(Console, "broker_connected", property(lambda self: True))
    monkeypatch.setattr(console, "_key", None)
    keyless = api.post(f"/api/boxes/{SITE}/{BOX}/preview", json={})
    assert keyless.status_code == 503 and "signing key" in keyless.json()["detail"]


def test_a_preview_naming_another_box_than_its_topic_is_refused(console: Console, api: TestClient) -> None:
    console._keep_preview(f"gatebox/{SITE}/{OTHER}/preview", preview_body(box=BOX))  # north-gate's login posing
    assert console.previews.of_box(SITE, BOX) == [] and console.previews.of_box(SITE, OTHER) == []
    assert console.recorder.refusals.counts["preview:wrong_box"] == 1
    for bad in (b"{", b"[" * 64 + b"]" * 64, preview_body()[:-1], b'{"schema": "gatebox.preview/1"}'):
        console._keep_preview(f"gatebox/{SITE}/{BOX}/preview", bad)
    assert console.previews.of_box(SITE, BOX) == []
    assert api.get(f"/api/boxes/{SITE}/{BOX}/previews/gate.jpg").status_code == 404


def test_a_box_without_cameras_is_shown_as_such_and_a_camera_answer_replaces_it(api: TestClient,
                                                                                console: Console) -> None:  # fmt: skip
    console._keep_preview(
        f"gatebox/{SITE}/{BOX}/preview",
        preview_body(camera=None, detail=f"{SITE}/{BOX} has no camera: it relays panic buttons only"),
    )
    (shown,) = api.get(f"/api/boxes/{SITE}/{BOX}/previews").json()["previews"]
    assert (shown["camera"], shown["status"], shown["has_image"]) == (None, "no_camera", False)
    assert shown["detail"].endswith("relays panic buttons only")
    console._keep_preview(f"gatebox/{SITE}/{BOX}/preview", preview_body())  # cameras added since
    assert [p["camera"] for p in api.get(f"/api/boxes/{SITE}/{BOX}/previews").json()["previews"]] == ["gate"]


def test_the_latest_previews_are_kept_within_their_bounds_oldest_first_out() -> None:
    clock = iter(range(100, 200))
    previews = Previews(max_previews=3, max_bytes=10**6, clock=lambda: float(next(clock)))
    for camera, shade in (("a", 10), ("b", 20), ("a", 30), ("c", 40), ("d", 50)):
        previews.ingest(f"gatebox/{SITE}/{BOX}/preview", preview_body(camera=camera, shade=shade))
    held = {p.camera: p for p in previews.of_box(SITE, BOX)}
    assert sorted(str(camera) for camera in held) == ["a", "c", "d"]  # b was the oldest; a was replaced by a newer one
    a = held["a"]
    assert a.jpeg == jpeg(30) and a.received_at == 102.0
    small = Previews(max_previews=100, max_bytes=2 * len(jpeg(1)) + 1)
    for n in range(5):
        small.ingest(f"gatebox/{SITE}/{BOX}/preview", preview_body(camera=f"c{n}", shade=n))
    assert [p.camera for p in small.of_box(SITE, BOX)] == ["c3", "c4"]
    with pytest.raises(Refused):
        small.ingest(f"gatebox/{SITE}/{BOX}/heartbeat", preview_body())


def test_the_boxes_table_says_each_panic_receivers_state(console: Console, api: TestClient) -> None:
    went_down = 1_764_600_123.0
    receivers = {
        "serial:/dev/ttyUSB0": ReceiverReport(connected=False, error="[Errno 2] no such device", down_since=went_down),
        "http:127.0.0.1:8088": ReceiverReport(connected=True, reconnects=1),
        "mqtt:127.0.0.1:1883": ReceiverReport(connected=False),
    }
    console.store.ingest(f"gatebox/{SITE}/{OTHER}/heartbeat", heartbeat(OTHER, panic_receivers=receivers))
    (box,) = api.get("/api/boxes").json()["boxes"]
    assert box["cameras"] == {}  # a box that relays panic buttons only
    assert box["panic_receivers"] == {
        "serial:/dev/ttyUSB0": {"state": "down", "error": "[Errno 2] no such device", "down_since": went_down,
                                "reconnects": None},
        "http:127.0.0.1:8088": {"state": "ok", "error": None, "down_since": None, "reconnects": 1},
        "mqtt:127.0.0.1:1883": {"state": "starting", "error": None, "down_since": None, "reconnects": None},
    }  # fmt: skip
