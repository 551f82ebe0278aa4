"""`gatebox run` on live cameras: availability with LWT, and a camera that goes away and comes back
(issue 2, tests 3 and 4). The camera is a real video served as HTTP MJPEG by a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, start_cli, write_config
from tests.support.broker import Mosquitto, free_port
from tests.support.mqtt import Collector
from tests.support.waiting import wait_for


class CameraServer:
    def __init__(self, video: Path) -> None:
        self.video = video
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        process = self.process = subprocess.Popen(
            [sys.executable, str(REPO / "tests/support/mjpeg_server.py"), "--port", str(self.port),
             "--video", str(self.video), "--fps", "10", "--max-frames", "50"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None  # stdout=PIPE
        assert process.stdout.readline().strip() == b"serving"

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()


@pytest.fixture
def camera(shared_data: Path) -> Iterator[CameraServer]:
    server = CameraServer(shared_data / "video" / "campus_pedestrians.avi")
    server.start()
    yield server
    server.kill()


def box_config(path: Path, broker: Mosquitto, camera_url: str, box_id: str) -> Path:
    return write_config(
        path,
        box={"site": "test-site", "box_id": box_id},
        broker={"port": broker.port, "keepalive_s": 5},
        cameras=[{
            "name": "gate", "url": camera_url, "open_timeout_s": 2, "read_timeout_s": 2,
            "reconnect": {"initial_backoff_s": 0.5, "max_backoff_s": 2},
        }],
    )  # fmt: skip


def test_camera_lost_killed_or_frozen_is_logged_and_resumed(
    tmp_path: Path, broker: Mosquitto, camera: CameraServer
) -> None:
    config = box_config(tmp_path / "gatebox.yaml", broker, camera.url, "reconnect")
    log = tmp_path / "run.log"
    box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=log)
    text = lambda: log.read_text(errors="replace")  # noqa: E731
    try:
        wait_for(lambda: "camera gate: connected (connection 1)" in text(), 60, "first connection")

        camera.kill()  # the camera goes away
        wait_for(lambda: "camera gate: stream lost" in text(), 15, "loss to be logged")
        wait_for(lambda: "camera gate: cannot open stream" in text(), 15, "a reopen to fail while it is down")
        assert box.poll() is None, text()
        camera.start()  # and comes back on the same address
        wait_for(lambda: "camera gate: connected (connection 2)" in text(), 20, "reconnection")

        assert camera.process is not None  # started again above
        os.kill(camera.process.pid, signal.SIGSTOP)  # frozen: connection open, no frames
        wait_for(lambda: text().count("camera gate: stream lost") == 2, 15, "frozen stream to be noticed")
        os.kill(camera.process.pid, signal.SIGCONT)
        wait_for(lambda: "camera gate: connected (connection 3)" in text(), 20, "reconnection after freeze")
        assert box.poll() is None, text()
        assert "Traceback" not in text()
    finally:
        box.send_signal(signal.SIGTERM)
        assert box.wait(30) == 0, text()


def test_availability_is_online_then_offline_by_lwt_when_killed(
    tmp_path: Path, broker: Mosquitto, camera: CameraServer
) -> None:
    config = box_config(tmp_path / "gatebox.yaml", broker, camera.url, "lwt")
    topic = "gatebox/test-site/lwt/availability"
    box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=tmp_path / "run.log")
    watcher = Collector(broker.port, topic)
    try:
        assert watcher.next(timeout=60).payload == b"online"
        box.kill()  # SIGKILL: no goodbye, the broker publishes the will
        box.wait()
        assert watcher.next(timeout=15).payload == b"offline"
    finally:
        box.kill()
        watcher.close()
    late = Collector(broker.port, topic)  # a centre that connects later sees the retained state
    try:
        assert late.next(timeout=5).payload == b"offline"
    finally:
        late.close()


def test_graceful_stop_publishes_offline(tmp_path: Path, broker: Mosquitto, camera: CameraServer) -> None:
    config = box_config(tmp_path / "gatebox.yaml", broker, camera.url, "graceful")
    box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=tmp_path / "run.log")
    watcher = Collector(broker.port, "gatebox/test-site/graceful/availability")
    try:
        assert watcher.next(timeout=60).payload == b"online"
        box.send_signal(signal.SIGTERM)
        assert box.wait(30) == 0
        assert watcher.next(timeout=5).payload == b"offline"
    finally:
        box.kill()
        watcher.close()
