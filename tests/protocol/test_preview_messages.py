"""The camera preview in the contract (issue 17): the `preview` command among the commands a box takes, the
`CameraPreview` answer and its bounds (an image only when `ok`, a JPEG, small enough for one MQTT message),
its route (best effort: never in the outbox, never before anything queued) and its ACL line."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.comms.delivery import ROUTES, Delivery
from edge.comms.outbox import Outbox, Priority
from edge.config import GateboxConfig
from edge.protocol.messages import COMMANDS, AckAlert, CameraPreview, PreviewRequest
from edge.protocol.wire import MAX_PREVIEW_IMAGE_BYTES

REPO = Path(__file__).resolve().parents[2]
BROKER_MESSAGE_LIMIT = 524288  # message_size_limit in config/mosquitto/gatebox.conf
JPEG = cv2.imencode(".jpg", np.zeros((90, 160, 3), np.uint8))[1].tobytes()
PNG = cv2.imencode(".png", np.zeros((90, 160, 3), np.uint8))[1].tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def preview(**fields: object) -> dict[str, object]:
    return {"site": "s1", "box_id": "b1", "request_id": "r1", "camera": "gate", "status": "ok", "taken_at": 1e9,
            "image_jpeg_b64": b64(JPEG), "width": 160, "height": 90, "summary": ["faces: 0"], **fields}  # fmt: skip


def test_a_preview_command_is_told_apart_from_an_ack() -> None:
    issued = datetime(2026, 12, 1, tzinfo=timezone.utc).isoformat()
    asked = COMMANDS.validate_python({"command": "preview", "request_id": "r1", "camera": "gate", "issued_at": issued})
    assert isinstance(asked, PreviewRequest) and asked.camera == "gate"
    every = COMMANDS.validate_python({"command": "preview", "request_id": "r2", "issued_at": issued})
    assert isinstance(every, PreviewRequest) and every.camera is None
    ack = {"command": "ack_alert", "event_id": "e1", "state": "acked", "issued_at": issued}
    assert isinstance(COMMANDS.validate_python(ack), AckAlert)


@pytest.mark.parametrize(
    "body",
    [
        {"command": "preview", "request_id": "r1", "camera": "../gate"},  # a camera that is no name
        {"command": "preview", "request_id": "r1", "camera": "gate", "event_id": "e1"},  # an ack's field
        {"command": "preview", "camera": "gate"},  # no request id
        {"command": "preview", "request_id": "r/1"},
        {"command": "reboot", "request_id": "r1"},
    ],
)
def test_a_preview_command_out_of_bounds_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        COMMANDS.validate_python({"issued_at": "2026-12-01T00:00:00Z", **body})


def test_a_good_preview_and_a_no_camera_answer_are_valid() -> None:
    assert CameraPreview.model_validate(preview()).status == "ok"
    none = CameraPreview.model_validate(preview(camera=None, status="no_camera", image_jpeg_b64=None,
                                                taken_at=None, detail="it relays panic buttons only"))  # fmt: skip
    assert none.model_dump(by_alias=True)["schema"] == "gatebox.preview/1"


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"image_jpeg_b64": None}, "an ok preview without its image"),
        ({"camera": None}, "an ok preview naming no camera"),
        ({"taken_at": None}, "an ok preview without its capture time"),
        ({"image_jpeg_b64": b64(PNG)}, "not a JPEG"),
        ({"image_jpeg_b64": "not base64!"}, "not base64"),
        ({"image_jpeg_b64": b64(b"\xff\xd8\xff" + bytes(MAX_PREVIEW_IMAGE_BYTES))}, "over the image bound"),
        ({"status": "no_frame"}, "an image with a status that has none"),
        ({"status": "rebooted"}, "a status the centre does not know"),
        ({"summary": ["x"] * 13}, "too many summary lines"),
        ({"summary": ["x" * 201]}, "a summary line too long"),
        ({"width": 0}, "no width"),
        ({"site": "s1/b2"}, "a site that is no name"),
        ({"html": "<script>"}, "an unknown field"),
    ],
)
def test_a_preview_out_of_bounds_is_refused(fields: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError):
        CameraPreview.model_validate(preview(**fields))


def test_the_largest_preview_fits_in_one_broker_message() -> None:
    largest = b"\xff\xd8\xff" + bytes(MAX_PREVIEW_IMAGE_BYTES - 3)
    message = CameraPreview.model_validate(preview(image_jpeg_b64=b64(largest), summary=["é" * 200] * 12,
                                                   detail=None, request_id="r" * 64))  # fmt: skip
    payload = message.model_dump_json(by_alias=True).encode()
    assert len(payload) < BROKER_MESSAGE_LIMIT - 4096  # room for the topic and the MQTT header


def test_a_preview_is_best_effort_and_never_waits_in_the_outbox(tmp_path: Path) -> None:
    route = ROUTES[CameraPreview]
    assert (route.leaf, route.priority, route.needs_receipt, route.queued, route.qos) == (
        "preview", Priority.OTHER, False, False, 1,
    )  # fmt: skip
    config = GateboxConfig.model_validate({"box": {"site": "s1", "box_id": "b1"}})
    outbox = Outbox(tmp_path / "outbox.sqlite3", 10**8)
    try:
        delivery = Delivery(config, outbox)  # no link: a best-effort message has nowhere to go, and is not kept
        delivery.send(CameraPreview.model_validate(preview()))
        assert outbox.stats().depth == 0
        assert delivery.address(CameraPreview.model_validate(preview())).topic == "gatebox/s1/b1/preview"
    finally:
        outbox.close()


def test_every_topic_a_box_writes_under_its_own_prefix_has_its_acl_line() -> None:
    acl = (REPO / "config" / "mosquitto" / "acl").read_text()
    written = set(re.findall(r"^pattern write gatebox/%u/(\w+)$", acl, re.MULTILINE))
    own = {route.leaf for route in ROUTES.values() if route.topic is None}
    assert "preview" in own and own <= written, f"no ACL line for {sorted(own - written)}"
