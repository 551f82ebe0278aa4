"""The centre's store (foundation of the console, issue 9): every event once by event_id, panic
updates replacing older copies, box health and applied list versions; fed from a real box."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from centre.store import CentreStore, EventFilter
from edge.protocol.panic import PanicEvent, PanicKind
from tests.conftest import REPO, run_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.enrolled import EnrolledData


def panic(sequence: int, presses: int, kind: PanicKind = "panic") -> bytes:
    return PanicEvent(
        event_id="p1", message_id=f"p1:{sequence}", kind=kind, device_id="btn-1", household="Li",
        pressed_at=datetime(2026, 11, 30, tzinfo=timezone.utc), received_at=datetime(2026, 11, 30, tzinfo=timezone.utc),
        sequence=sequence, presses=presses, site="s", box_id="b",
    ).to_json().encode()  # fmt: skip


def test_panic_updates_replace_older_copies_and_resends_change_nothing(tmp_path: Path) -> None:
    store = CentreStore(tmp_path / "centre.sqlite3")
    assert store.ingest("gatebox/s/b/panic", panic(1, 1)).new
    assert store.ingest("gatebox/s/b/panic", panic(3, 3)).receipt_id == "p1:3"
    assert not store.ingest("gatebox/s/b/panic", panic(2, 2)).new  # an older copy arriving late
    (event,) = store.events()
    assert (event["event_id"], event["sequence"], event["kind"]) == ("p1", 3, "panic")
    store.ingest("gatebox/s/b/panic", panic(4, 3, "cancel"))
    assert store.events()[0]["kind"] == "cancel"
    with pytest.raises(ValueError):
        store.ingest("gatebox/s/b/alert", json.dumps({"schema": "gatebox.alert/1"}).encode())


def test_record_stores_a_box_replay_once(
    tmp_path: Path, broker: Mosquitto, crowd_clip: Path, enrolled_data: EnrolledData
) -> None:
    enrolled_data.copy(tmp_path / "box", {"boy": "watchlist"})
    # Resent every 2 s until confirmed: the recorder may still be starting when the alert first goes out.
    config = write_config(
        tmp_path / "c.yaml",
        box={"site": "rec", "box_id": "b1"},
        link={"resend_after_s": 2},
        broker={"port": broker.port, "topic_prefix": "recordtest", "flush_timeout_s": 30},
    )
    recorder = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(config), "centre", "record", "--db",
                                 str(tmp_path / "centre.sqlite3"), "--timeout", "40"],
                                stdout=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    try:
        replay = run_cli("--config", config, "--data-dir", tmp_path / "box", "replay", crowd_clip, "--end-frame", "40")
        assert replay.returncode == 0 and "1 confirmed by the centre" in replay.stdout, replay.stdout + replay.stderr
        recorder.terminate()
        recorder.wait(10)
    finally:
        recorder.kill()
    store = CentreStore(tmp_path / "centre.sqlite3")
    (event,) = store.events()
    assert (event["kind"], event["list"], event["subject_id"], event["site"], event["box_id"]) == (
        "face_match", "watchlist", "boy", "rec", "b1")  # fmt: skip
    (box,) = store.boxes()
    assert (box["site"], box["box_id"], box["online"]) == ("rec", "b1", False)  # offline after the replay ended


@pytest.mark.parametrize(("offset", "limit"), [(0, 100), (0, 2), (2, 3), (3, 4), (8, 5), (20, 5)])
def test_feed_pages_put_open_panics_first_then_newest(tmp_path: Path, offset: int, limit: int) -> None:
    store = CentreStore(tmp_path / "centre.sqlite3")
    kinds = ["face_match", "panic", "face_match", "panic", "plate_match", "panic", "elder_leaving", "face_match",
             "panic", "face_match"]  # fmt: skip
    for i, kind in enumerate(kinds):
        store._db.execute(
            "INSERT INTO events (event_id, kind, site, box_id, ts, received_at, state, payload) VALUES "
            "(?, ?, 's', 'b', '2026-11-30', ?, ?, '{}')",
            (f"e{i}", kind, float(i), "closed" if i == 3 else "new"),
        )
    # The order the page expects, worked out by hand: open panics newest first, then the rest newest first.
    expected = ["e8", "e5", "e1", "e9", "e7", "e6", "e4", "e3", "e2", "e0"]
    got = [e["event_id"] for e in store.events(EventFilter(limit=limit, offset=offset))]
    assert got == expected[offset : offset + limit]


def test_snapshots_of_closed_events_are_forgotten_after_their_time(tmp_path: Path) -> None:
    store = CentreStore(tmp_path / "centre.sqlite3")
    for i, (state, age_days) in enumerate([("closed", 40), ("closed", 10), ("acked", 40), ("new", 40)]):
        store._db.execute(
            "INSERT INTO events (event_id, kind, site, box_id, ts, received_at, state, payload, snapshot) VALUES "
            "(?, 'face_match', 's', 'b', '2026-11-30', ?, ?, '{}', x'ffd8')",
            (f"e{i}", time.time() - age_days * 86400, state),
        )
    assert store.forget_snapshots(time.time() - 30 * 86400) == 1
    assert [store.snapshot(f"e{i}") for i in range(4)] == [None, b"\xff\xd8", b"\xff\xd8", b"\xff\xd8"]
    assert store.event("e0") is not None  # the record stays


def test_box_messages_say_how_the_box_was_before(tmp_path: Path) -> None:
    store = CentreStore(tmp_path / "centre.sqlite3")
    first = store.ingest("gatebox/s/b/heartbeat", b'{"cameras": {}}')
    assert first.box_before is None and first.box_online  # first heard of: news for the page
    again = store.ingest("gatebox/s/b/heartbeat", b'{"cameras": {}}')
    assert again.box_before is not None and again.box_before.online and again.box_online  # routine
    gone = store.ingest("gatebox/s/b/availability", b"offline")
    assert gone.box_before is not None and gone.box_before.online and gone.box_online is False
