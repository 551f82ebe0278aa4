"""What a tester meets at the edges (issue 17): `replay --events /dev/null` (or a pipe) simply works,
without an fsync error and without touching the device's mode; `centre operator add` with no
terminal to ask on says to use `--password-stdin` instead of dying with EOFError."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from centre.cli import main as centre_main
from edge.store.events import EventsFile
from tests.conftest import REPO, run_cli, write_config
from tests.support.alerts import sample_alert


@pytest.fixture
def dev_null_mode() -> Iterator[int]:
    """/dev/null's mode, checked unchanged after the test (and put back if not: the tests run as root)."""
    before = os.stat("/dev/null").st_mode
    yield before
    after = os.stat("/dev/null").st_mode
    if after != before:
        os.chmod("/dev/null", stat.S_IMODE(before))
    assert after == before, f"/dev/null's mode changed from {before:o} to {after:o}"


def test_events_to_dev_null_are_written_without_fsync_or_chmod(dev_null_mode: int) -> None:
    events = EventsFile(Path("/dev/null"))
    try:
        events(sample_alert("e1"))
        events(sample_alert("e2"))
    finally:
        events.close()


def test_events_into_a_pipe_arrive_whole(tmp_path: Path) -> None:
    fifo = tmp_path / "events.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))  # until the writer closes
    reader.start()
    events = EventsFile(fifo)
    try:
        events(sample_alert("e1"))
    finally:
        events.close()
        reader.join(timeout=10)
    assert received == [sample_alert("e1").to_json().encode() + b"\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_regular_events_file_is_still_fsynced_per_alert(tmp_path: Path) -> None:
    events = EventsFile(tmp_path / "events.jsonl")
    try:
        with mock.patch("edge.store.events.os.fsync", wraps=os.fsync) as fsync:
            events(sample_alert("e1"))
            events(sample_alert("e2"))
    finally:
        events.close()
    assert fsync.call_count == 2
    assert stat.S_IMODE(os.stat(tmp_path / "events.jsonl").st_mode) == 0o600


def test_password_stdin_with_nothing_on_stdin_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    config = write_config(tmp_path / "centre.yaml")
    status = centre_main(["--config", str(config), "operator", "add", "alice", "--password-stdin",
                          "--db", str(tmp_path / "console.db")])  # fmt: skip
    assert status == 2
    assert "--password-stdin: no password on stdin" in capsys.readouterr().err


@pytest.mark.slow  # the CLI in a session of its own: no controlling terminal, as under a service or a script
@pytest.mark.parametrize("stdin", [b"", b"a-long-enough-password\n"])
def test_operator_add_without_a_terminal_says_to_use_password_stdin(tmp_path: Path, stdin: bytes) -> None:
    config = write_config(tmp_path / "centre.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "centre", "--config", str(config), "operator", "add", "alice",
         "--db", str(tmp_path / "console.db")],
        input=stdin, capture_output=True, timeout=60, cwd=REPO, start_new_session=True, check=False,
    )  # fmt: skip
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert "no terminal to ask for alice's password on: pipe it in with --password-stdin" in err
    assert "Traceback" not in err and "EOFError" not in err


@pytest.mark.slow  # the CLI on a real clip
def test_replay_with_events_to_dev_null(tmp_path: Path, crowd_clip: Path, dev_null_mode: int) -> None:
    result = run_cli("--data-dir", tmp_path / "box", "replay", crowd_clip, "--no-publish", "--end-frame", "6",
                     "--events", "/dev/null", timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("replay: 6 frames in ") and "Traceback" not in result.stderr
