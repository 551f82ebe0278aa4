"""The console's camera preview at the box (issue 17), in process: a `Box` on an `InMemoryLink` takes the
centre's signed `preview` command, draws each camera's newest frame as the running pipeline left it (the
gate line, the faces found; `gatebox camera preview`'s drawing) and answers on its own `preview` topic; a
box without cameras, a camera that shows nothing and a camera it does not have each get a clear answer;
an unsigned request gets none."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.box import Box
from edge.comms.link import InMemoryBroker, InMemoryLink
from edge.config import GateboxConfig
from edge.preview import FACE_COLOUR, LINE_COLOUR
from edge.protocol.messages import CameraPreview, PreviewRequest
from edge.protocol.signing import generate_keypair, load_private_key, seal
from edge.protocol.wire import MAX_PREVIEW_IMAGE_BYTES
from edge.remote_preview import RemotePreviews, preview_jpeg, serve_previews
from edge.sources.latest import LatestFrames
from edge.types import Frame
from tests.support.waiting import wait_for

GATE_LINE = {"start": [0.1, 0.8], "end": [0.9, 0.8], "outside": [0.5, 0.95]}
CAMERAS: list[dict[str, object]] = [
    {"name": "gate", "url": "rtsp://cam/gate", "gate_line": GATE_LINE},
    {"name": "yard", "url": "rtsp://cam/yard"},
]
TAKEN_AT = 1_764_600_000.0


@dataclass
class Wired:
    box: Box
    previews: RemotePreviews
    frames: LatestFrames
    centre: InMemoryLink
    answers: list[tuple[str, dict[str, object]]]
    key: Ed25519PrivateKey

    def ask(self, camera: str | None = None, key: Ed25519PrivateKey | None = None, request_id: str = "r1") -> None:
        """What the console publishes on the box's `cmd` topic."""
        command = PreviewRequest(command="preview", request_id=request_id, camera=camera, by="op1",
                                 issued_at=datetime.now(timezone.utc))  # fmt: skip
        assert self.centre.publish("gatebox/s1/b1/cmd", seal(command.model_dump(mode="json"), key or self.key))

    def wait_answers(self, count: int, timeout: float = 20) -> list[dict[str, object]]:
        wait_for(lambda: len(self.answers) >= count, timeout, f"{count} preview answer(s)")
        assert all(topic == "gatebox/s1/b1/preview" for topic, _ in self.answers)
        return [body for _, body in self.answers]


def wire(tmp_path: Path, cameras: list[dict[str, object]]) -> Wired:
    generate_keypair(tmp_path / "centre.pem", tmp_path / "centre.pub.pem")
    config = GateboxConfig.model_validate({
        "box": {"site": "s1", "box_id": "b1"}, "cameras": cameras,
        "link": {"centre_public_key": str(tmp_path / "centre.pub.pem")},
    })  # fmt: skip
    broker = InMemoryBroker()
    centre = InMemoryLink(broker, "centre")
    answers: list[tuple[str, dict[str, object]]] = []
    centre.route("gatebox/+/+/preview", lambda topic, payload: answers.append((topic, json.loads(payload))))
    centre.start()
    box = Box(config, tmp_path / "box", link=InMemoryLink(broker, "box"))
    frames = LatestFrames()
    return Wired(box, serve_previews(box, frames.frame), frames, centre, answers,
                 load_private_key(tmp_path / "centre.pem"))  # fmt: skip


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    made = wire(tmp_path, CAMERAS)
    yield made
    made.previews.close()
    made.box.close()
    made.centre.close()


def decoded(answer: dict[str, object]) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(base64.b64decode(str(answer["image_jpeg_b64"])), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def near(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return np.all(np.abs(image.astype(int) - np.array(colour)) <= tolerance, axis=2)


def test_the_box_draws_the_gate_line_and_the_faces_on_its_cameras_latest_frame(wired: Wired, faces_dir: Path) -> None:
    photo = faces_dir / "kit_harington" / "kit1.jpg"
    if not photo.exists():
        pytest.skip(f"{photo} not present")
    image = cv2.imread(str(photo))
    wired.frames.put(Frame("gate", 41, TAKEN_AT, image))
    untouched = image.copy()
    wired.ask("gate")
    (answer,) = wired.wait_answers(1)
    CameraPreview.model_validate(answer)
    assert (answer["status"], answer["camera"], answer["request_id"], answer["taken_at"]) == ("ok", "gate", "r1",
                                                                                              TAKEN_AT)  # fmt: skip
    assert (answer["width"], answer["height"]) == (image.shape[1], image.shape[0])
    summary = answer["summary"]
    assert isinstance(summary, list)
    assert "faces: 1 found, 1 wide enough to recognise" in summary
    assert any(str(line).startswith("gate line: start [0.1, 0.8]") for line in summary)
    drawn = decoded(answer)
    line_row = round(0.8 * drawn.shape[0])
    assert near(drawn[line_row - 3 : line_row + 4], LINE_COLOUR).any(axis=0).mean() > 0.6  # the line across 80 %
    assert near(drawn, FACE_COLOUR).sum() > 100  # the face's box
    assert np.array_equal(image, untouched)  # drawn on a copy: the pipeline's frame is never touched


def test_every_camera_answers_and_one_without_a_frame_says_so(wired: Wired) -> None:
    wired.frames.put(Frame("gate", 1, TAKEN_AT, np.full((360, 640, 3), 90, np.uint8)))
    wired.ask()  # every camera
    answers = {str(a["camera"]): a for a in wired.wait_answers(2)}
    assert answers["gate"]["status"] == "ok"
    assert answers["yard"]["status"] == "no_frame" and answers["yard"]["image_jpeg_b64"] is None
    assert "camera yard has shown no frame" in str(answers["yard"]["detail"])


def test_a_camera_the_box_does_not_have_is_named_in_the_answer(wired: Wired) -> None:
    wired.ask("north")
    (answer,) = wired.wait_answers(1)
    assert (answer["status"], answer["camera"]) == ("unknown_camera", "north")
    assert answer["detail"] == "no camera north on this box (it has gate, yard)"


def test_a_box_without_cameras_answers_no_camera(tmp_path: Path) -> None:
    panic_only = wire(tmp_path, [])
    try:
        panic_only.ask()
        (answer,) = panic_only.wait_answers(1)
        assert (answer["status"], answer["camera"], answer["image_jpeg_b64"]) == ("no_camera", None, None)
        assert answer["detail"] == "s1/b1 has no camera: it relays panic buttons only"
    finally:
        panic_only.previews.close()
        panic_only.box.close()
        panic_only.centre.close()


def test_a_request_not_signed_by_the_centre_gets_no_preview(wired: Wired) -> None:
    wired.frames.put(Frame("gate", 1, TAKEN_AT, np.full((360, 640, 3), 90, np.uint8)))
    wired.ask("gate", key=Ed25519PrivateKey.generate())
    wired.ask("yard", request_id="after")  # a signed one after it: the forged one was refused, not queued
    (answer,) = wired.wait_answers(1)  # (the link takes messages in order: the forged one came first)
    assert answer["request_id"] == "after"
    assert wired.box.link is not None and dict(wired.box.link.bad_input) == {"bad_signature": 1}


def test_a_noisy_large_frame_is_made_to_fit_one_message() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    jpeg = preview_jpeg(noise)
    assert len(jpeg) <= MAX_PREVIEW_IMAGE_BYTES
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and max(image.shape[:2]) <= 1280
