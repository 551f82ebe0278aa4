"""Biometric hygiene (issue 13, items 15, 10 and secure_delete): every file the box and the centre
create (databases with their -wal/-shm, snapshots, the events files, list bundles) is 0600 and every
folder they create 0700, even when started from a shell with umask 022; every database connection
overwrites what it deletes; the box's events.jsonl never keeps a face."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from centre.store import CentreStore
from edge.box import Box
from edge.comms.outbox import Outbox, OutgoingMessage, Priority
from edge.config import GateboxConfig
from edge.protocol.sqlite import Migration, Schema, open_database
from edge.store.alert_states import AlertStates
from edge.store.events import EventsFile
from edge.store.lists import ListStore
from tests.conftest import REPO, write_config
from tests.support import crowd
from tests.support.alerts import sample_alert as alert
from tests.support.broker import Mosquitto

FACE = b"\xff\xd8\xff-a-face-that-must-not-stay-" * 40


@pytest.fixture
def shell_umask() -> Iterator[None]:
    """The umask of an interactive shell: files 0644 unless the code says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def loose(root: Path, made_by_the_test: bool = False) -> list[str]:
    """Files not 0600 and folders not 0700 under `root` (and `root` itself, unless the test made it)."""
    found = []
    for path in [*([] if made_by_the_test else [root]), *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            if mode & 0o077:
                found.append(f"{path.relative_to(root.parent)}/ {oct(mode)}")
        elif mode != 0o600:
            found.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return found


def test_every_store_is_private_with_a_loose_umask(tmp_path: Path, shell_umask: None) -> None:
    box, centre = tmp_path / "box", tmp_path / "centre"
    outbox = Outbox(box / "outbox.sqlite3", 10**6)
    outbox.put(OutgoingMessage("a1", "alert", Priority.ALERT, "t", FACE, True))
    states = AlertStates(box)
    states.record(alert("a1"))
    lists = ListStore(box)
    journal = EventsFile(box / "events.jsonl", faces=False)
    journal(alert("a1"))
    export = EventsFile(tmp_path / "export" / "events.jsonl")
    export(alert("a1"))
    store = CentreStore(centre / "centre.sqlite3")
    try:
        assert (box / "outbox.sqlite3-wal").exists() and (box / "snapshots" / "a1.jpg").exists()
        assert loose(box) == [] and loose(centre) == [] and loose(tmp_path / "export") == []
    finally:
        for closable in (outbox, states, lists, journal, export, store):
            closable.close()


def test_files_an_earlier_version_left_readable_are_tightened(tmp_path: Path, shell_umask: None) -> None:
    path = tmp_path / "outbox.sqlite3"
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE t (x)")
    old.commit()  # old stays open, so its -wal and -shm stay on disk, 0644 like the database
    assert stat.S_IMODE(path.with_name("outbox.sqlite3-wal").stat().st_mode) == 0o644
    (tmp_path / "events.jsonl").write_text("")
    db = open_database(path, Schema(Migration("t", "CREATE TABLE IF NOT EXISTS t (x);")), "the test store")
    EventsFile(tmp_path / "events.jsonl", faces=False).close()
    try:
        assert loose(tmp_path, made_by_the_test=True) == []
    finally:
        db.close()
        old.close()


def test_secure_delete_is_set_on_every_connection_whatever_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's SQLite compiles it in, others do not: a build without it is simulated by turning it
    off on each new connection; a deleted face must still leave no trace in the file."""
    plain_connect = sqlite3.connect

    def build_without_secure_delete(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = plain_connect(*args, **kwargs)
        db.execute("PRAGMA secure_delete=OFF")
        return db

    monkeypatch.setattr(sqlite3, "connect", build_without_secure_delete)  # the module every store connects with
    outbox = Outbox(tmp_path / "outbox.sqlite3", 10**6)
    states = AlertStates(tmp_path)
    store = CentreStore(tmp_path / "centre.sqlite3")
    try:
        for db in (outbox._db, outbox._bookkeeping, states._db, store._db):
            assert db.execute("PRAGMA secure_delete").fetchone() == (1,)
        outbox.put(OutgoingMessage("a1", "alert", Priority.ALERT, "t", FACE, True))
        outbox.remove(["a1"])  # through the second (bookkeeping) connection
        outbox._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        for closable in (outbox, states, store):
            closable.close()
    assert b"a-face-that-must-not-stay" not in (tmp_path / "outbox.sqlite3").read_bytes()


def test_the_cli_creates_private_files_from_a_loose_umask(tmp_path: Path, broker: Mosquitto, crowd_clip: Path) -> None:
    """The box (enrol, replay with alerts, snapshots, --events, --stats) and the centre (its
    database, a list bundle) started from a shell with umask 022."""
    config = write_config(
        tmp_path / "gatebox.yaml", box={"site": "s1", "box_id": "modes"},
        broker={"port": broker.port, "flush_timeout_s": 1},
        recognition={"min_matching_frames": 1, "subject_cooldown_s": 0, "strong_distance": 0.5},
    )  # fmt: skip
    photo = crowd.write_face_crop(crowd_clip, "boy", tmp_path / "boy.png")
    (tmp_path / "plates.csv").write_text("plate,subject_id\n粤B12345,car1\n", encoding="utf-8")
    out = tmp_path / "out"
    commands = [
        ["--data-dir", out / "box", "enroll", "--list", "watchlist", "--subject", "boy", photo],
        ["--data-dir", out / "box", "replay", crowd_clip, "--end-frame", "40", "--events", out / "replay.jsonl",
         "--stats", out / "stats.json"],
        ["centre", "record", "--db", out / "centre" / "centre.sqlite3", "--timeout", "1"],
        ["centre", "lists", "build", "--list", "plate_watchlist", "--version", "1", "--plates", tmp_path / "plates.csv",
         "--out", out / "v1.gbl"],
    ]  # fmt: skip
    out.mkdir()
    for args in commands:
        result = subprocess.run(
            [sys.executable, "-m", "edge", "--config", str(config), *map(str, args)],
            capture_output=True, text=True, cwd=REPO, timeout=300, preexec_fn=lambda: os.umask(0o022),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    assert list((out / "box" / "snapshots").glob("*.jpg")), "the replay raised no alert"
    assert (out / "v1.gbl").exists() and (out / "centre" / "centre.sqlite3").exists()
    assert loose(out, made_by_the_test=True) == []


def test_the_events_journal_keeps_no_face(tmp_path: Path) -> None:
    """Its lines name the snapshot file (gone once the alert is closed) instead of holding the face;
    lines an earlier version wrote with the face are stripped, and a line a crash cut short dropped."""
    face = alert("x").snapshot_jpeg_b64
    journal = tmp_path / "events.jsonl"
    journal.write_text(alert("old").to_json() + "\n" + '{"schema":"gatebox.alert/1","event_id":"cut', encoding="utf-8")
    services = Box(GateboxConfig(), tmp_path, connect=False, journal=journal)
    try:
        services.alerts.emit(alert("new"))
        assert (tmp_path / "snapshots" / "new.jpg").exists()
        assert services.states.set_state("new", "closed", None, None)
    finally:
        services.close()
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [line["event_id"] for line in lines] == ["old", "new"]
    assert [line["snapshot_file"] for line in lines] == ["snapshots/old.jpg", "snapshots/new.jpg"]
    assert face not in journal.read_text() and "snapshot_jpeg_b64" not in journal.read_text()
    assert not (tmp_path / "snapshots" / "new.jpg").exists()
