"""systemd integration: READY and watchdog pings over a real notify socket, and no ping for a
camera loop that stopped making progress."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from edge.health import CameraStatus, Watchdog
from tests.conftest import start_cli, write_config
from tests.support.broker import Mosquitto


def notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(1.0)
    return sock


def test_run_tells_systemd_it_is_ready_and_keeps_pinging(tmp_path: Path, broker: Mosquitto, shared_data: Path) -> None:
    sock = notify_socket(tmp_path / "notify")
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "s1", "box_id": "watchdog"},
        broker={"port": broker.port},
        cameras=[{"name": "gate", "url": str(shared_data / "video" / "parking_lot_cars.mp4")}],
    )
    os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"] = str(tmp_path / "notify"), "2000000"
    try:
        box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=tmp_path / "run.log")
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    messages: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and messages.count("WATCHDOG=1") < 3:
            try:
                messages.append(sock.recv(256).decode())
            except TimeoutError:
                continue
    finally:
        box.send_signal(signal.SIGTERM)
        assert box.wait(30) == 0
    assert messages[0] == "READY=1" and messages.count("WATCHDOG=1") >= 3
    assert sock.recv(256).decode() == "STOPPING=1"


def test_no_ping_when_a_camera_loop_is_stuck(tmp_path: Path) -> None:
    sock = notify_socket(tmp_path / "notify")
    watchdog = Watchdog()
    watchdog._address = str(tmp_path / "notify")
    healthy, stuck = CameraStatus("a"), CameraStatus("b")
    assert watchdog.ping_if_healthy([healthy, stuck], stale_after_s=60)
    assert sock.recv(64) == b"WATCHDOG=1"
    stuck.last_progress -= 120
    assert not watchdog.ping_if_healthy([healthy, stuck], stale_after_s=60)
    sock.settimeout(0.3)
    try:
        sock.recv(64)
        raise AssertionError("pinged although camera b is stuck")
    except TimeoutError:
        pass
