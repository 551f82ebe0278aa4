"""RTSP with H.264, what the IP cameras at a gate speak (issue 17): a real RTSP server (GStreamer's, started
by the tests) serves a real clip, looped. `gatebox run` alerts on the faces it streams; the camera going
away is reported lost (heartbeat and log) and is back when the server is; a frozen stream (connection
open, no frames) is noticed within the camera's `read_timeout_s`, not after FFmpeg's 60-90 s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import paho.mqtt.client as mqtt
import pytest

from edge.config import CameraConfig
from edge.health import CameraStatus
from edge.sources.video import LiveCamera
from tests.conftest import REPO, start_cli, write_config
from tests.support.broker import Mosquitto, free_port
from tests.support.enrolled import EnrolledData
from tests.support.mqtt import Collector
from tests.support.waiting import wait_for, wait_listening

SYSTEM_PYTHON = "/usr/bin/python3"  # the one with Debian's GObject bindings (python3-gi)
SERVER = REPO / "tests" / "support" / "rtsp_server.py"
PACKAGES = "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
FPS = 10
READ_TIMEOUT_S = 2.0


def _rtsp_server_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    check = subprocess.run([SYSTEM_PYTHON, str(SERVER), "--check"], capture_output=True, text=True, timeout=30)
    return None if check.returncode == 0 else check.stdout.strip() or check.stderr.strip()


class RtspCamera:
    """The RTSP server as a process of its own, on a port that stays the same across restarts."""

    def __init__(self, frames: Path, log: Path) -> None:
        self.frames = frames
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/gate"

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), "--port", str(self.port), "--frames", str(self.frames), "--fps", str(FPS)],
                stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_listening(self.process, self.port, 20, "the RTSP server", lambda: self.log.read_text(errors="replace"))

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def rtsp_frames(tmp_path_factory: pytest.TempPathFactory, crowd_clip: Path) -> Path:
    """The crowd clip as 1280x720 JPEGs, for the server to encode to H.264 (it has no OpenCV of its own)."""
    missing = _rtsp_server_missing()
    if missing:
        pytest.skip(f"no RTSP server here ({missing}); ./scripts/test installs {PACKAGES} when run as root")
    frames = tmp_path_factory.mktemp("rtsp-frames")
    capture = cv2.VideoCapture(str(crowd_clip))
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        image = cv2.resize(image, (1280, 720), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(frames / f"{index:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        index += 1
    capture.release()
    assert index > 50
    return frames


@pytest.fixture
def rtsp_camera(tmp_path: Path, rtsp_frames: Path) -> Iterator[RtspCamera]:
    camera = RtspCamera(rtsp_frames, tmp_path / "rtsp-server.log")
    camera.start()
    yield camera
    camera.kill()


def heartbeat_says(connected: bool) -> Callable[[mqtt.MQTTMessage], bool]:
    """A heartbeat that shows the camera connected (or lost, as the console's LOST)."""

    def matches(message: mqtt.MQTTMessage) -> bool:
        if not message.topic.endswith("/heartbeat"):
            return False
        return json.loads(message.payload)["cameras"].get("gate", {}).get("connected") is connected

    return matches


@pytest.mark.slow
def test_run_alerts_over_rtsp_and_a_camera_that_goes_away_is_lost_then_back(
    tmp_path: Path, broker: Mosquitto, enrolled_data: EnrolledData, rtsp_camera: RtspCamera
) -> None:
    data = enrolled_data.copy(tmp_path / "box")  # the clip's boy (watchlist) and woman (missing_elders)
    config = write_config(
        tmp_path / "gatebox.yaml",
        box={"site": "test-site", "box_id": "rtsp"},
        broker={"port": broker.port, "keepalive_s": 5},
        link={"heartbeat_interval_s": 0.5},
        recognition={"embedding_workers": 1},
        cameras=[{"name": "gate", "url": rtsp_camera.url, "open_timeout_s": 4, "read_timeout_s": READ_TIMEOUT_S,
                  "reconnect": {"initial_backoff_s": 0.5, "max_backoff_s": 1}}],
    )  # fmt: skip
    centre = Collector(broker.port, "gatebox/test-site/rtsp/#", receipts=True)
    log = tmp_path / "run.log"
    box = start_cli("--config", config, "--data-dir", data, "run", log=log)
    text = lambda: log.read_text(errors="replace")  # noqa: E731
    try:
        got = centre.until(lambda m: m.topic.endswith("/alert"), 60, f"an alert from the RTSP camera\n{text()}")
        alert = json.loads(got[-1].payload)
        assert alert["camera"] == "gate" and alert["subject_id"] in {"boy", "woman"}, alert
        assert "camera gate: connected (connection 1)" in text()

        rtsp_camera.kill()  # the camera goes away: LOST in the heartbeat, and logged
        centre.until(heartbeat_says(False), 15, f"the camera to be reported lost\n{text()}")
        assert "camera gate: stream lost" in text()
        rtsp_camera.start()  # and comes back on the same address
        centre.until(heartbeat_says(True), 20, f"the camera to be reported back\n{text()}")
        wait_for(lambda: "camera gate: connected (connection 2)" in text(), 5, "the reconnection to be logged")
        assert box.poll() is None, text()
    finally:
        box.send_signal(signal.SIGTERM)
        code = box.wait(30)
        centre.close()
    assert code == 0, text()
    assert "Traceback" not in text()


@pytest.mark.slow
def test_a_frozen_rtsp_stream_is_lost_within_the_read_timeout(rtsp_camera: RtspCamera) -> None:
    stop = threading.Event()
    status = CameraStatus("gate")
    camera = LiveCamera(CameraConfig(name="gate", url=rtsp_camera.url, open_timeout_s=4, read_timeout_s=READ_TIMEOUT_S),
                        stop, status)  # fmt: skip
    received: list[float] = []

    def watch() -> None:  # frames() reconnects by itself and ends only when stopped
        for _ in camera.frames():
            received.append(time.monotonic())

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(received) >= 2 * FPS, 30, "two seconds of frames")
        rtsp_camera.freeze()  # the connection stays open; nothing more comes
        frozen_at = time.monotonic()
        wait_for(lambda: not status.connected, 4 * READ_TIMEOUT_S, "the frozen stream to be noticed")
        noticed_after = time.monotonic() - frozen_at
    finally:
        stop.set()
        rtsp_camera.kill()
        reader.join(timeout=15)
    assert noticed_after < READ_TIMEOUT_S + 1.0, f"noticed after {noticed_after:.1f} s"
    assert not reader.is_alive()
