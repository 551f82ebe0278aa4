"""./scripts/demo end to end, as a new user runs it (issue 13, item 20): it must exit 0 when the
alert arrived (it exited 143: the cleanup's `wait` on the console it had just killed became the
script's status), non-zero with the failing step's status when a step fails, and leave nothing running
(the old cleanup also stopped at its first failing `kill` under `set -e` and left the broker running)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.broker import find_mosquitto, free_port

pytestmark = pytest.mark.slow  # every test runs scripts/demo

DEMO = REPO / "scripts" / "demo"
MEDIA = ("astronaut.png", "vtest.avi", "demo_clip.avi")


def run_demo(out: Path) -> tuple[subprocess.CompletedProcess[str], int, int]:
    broker_port, console_port = free_port(), free_port()
    env = {**os.environ, "GATEBOX_DEMO_DIR": str(out), "GATEBOX_DEMO_PORT": str(broker_port),
           "GATEBOX_DEMO_CONSOLE_PORT": str(console_port)}  # fmt: skip
    env.pop("GATEBOX_DEMO_KEEP", None)
    result = subprocess.run([str(DEMO)], capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    return result, broker_port, console_port


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def _needs_mosquitto() -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; ./scripts/test installs it when run as root")


def test_the_demo_succeeds_with_exit_status_0(tmp_path: Path) -> None:
    """~20 s with the venv and models in place (the sample media is downloaded once, unless a
    previous ./scripts/demo left it in demo-out/media)."""
    out = tmp_path / "out"
    cached = REPO / "demo-out" / "media"
    if all((cached / name).is_file() for name in MEDIA):
        (out / "media").mkdir(parents=True)
        for name in MEDIA:
            shutil.copy(cached / name, out / "media" / name)
    result, broker_port, console_port = run_demo(out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "replay: 80 frames" in result.stdout and "1 alert(s), 1 confirmed by the centre" in result.stdout
    assert any(line.startswith("ALERT ") and "list=missing_elders subject=elder-0042" in line for line in lines)
    stored = [line for line in lines if line.startswith("face_match missing_elders/elder-0042 at demo-site/gate-01")]
    assert len(stored) == 1 and "snapshot=yes" in stored[0], result.stdout
    assert not listening(broker_port) and not listening(console_port)  # the cleanup stopped both


def test_a_failing_demo_exits_with_the_failing_step_s_status(tmp_path: Path, faces_dir: Path) -> None:
    """The replay fails (an unreadable clip) after the console started: the cleanup kills the
    console and must still exit with the replay's status (2), not 143 and not 0."""
    media = tmp_path / "out" / "media"
    media.mkdir(parents=True)
    shutil.copy(faces_dir / "joe_biden" / "biden1.jpg", media / "astronaut.png")  # one face to enrol
    (media / "vtest.avi").write_bytes(b"unused: demo_clip.avi exists")
    (media / "demo_clip.avi").write_bytes(b"not a video")
    result, broker_port, console_port = run_demo(tmp_path / "out")
    assert "gatebox centre serve" in result.stdout  # the console was running when the replay failed
    assert "cannot decode video" in result.stderr
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert not listening(broker_port) and not listening(console_port)
