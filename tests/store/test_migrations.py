"""An existing box's (and centre's) databases migrate when the store opens them at start, their data
intact: each store's schema as shipped at commit 9586f6d (before schema versions; the centre's at
user_version 1), and the first release's, from before the columns added in place since, are written
here as they were, with a row of data, then opened with the current code."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np

from centre import store as centre_store
from centre.store import CentreStore
from edge.comms import outbox as outbox_module
from edge.comms.outbox import Outbox
from edge.protocol.embedding import DLIB_EMBEDDER
from edge.store import alert_states, lists
from edge.store.alert_states import AlertStates
from edge.store.lists import ListStore

OUTBOX_9586F6D = """
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    topic         TEXT NOT NULL,
    payload       BLOB NOT NULL,
    needs_receipt INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    created_mono  REAL,             -- time.monotonic() when queued, valid within `boot_id`
    boot_id       TEXT,
    sent_at       REAL,             -- last hand-over to MQTT; NULL: (re)send as soon as connected
    attempts      INTEGER NOT NULL DEFAULT 0,
    held          INTEGER NOT NULL DEFAULT 0  -- 1: stored, not yet free to leave (see `put`)
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (priority DESC, seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO outbox (event_id, kind, priority, topic, payload, needs_receipt, created_at, created_mono, boot_id,
    sent_at, attempts, held) VALUES ('a1', 'alert', 20, 'gatebox/s/b/alert', x'7b7d', 1, 1.0, 5.0, 'old-boot',
    NULL, 0, 1);
INSERT INTO counters VALUES ('dropped.report', 3);
"""
# 27488cf, the outbox's first release: no monotonic age, nothing held.
OUTBOX_FIRST_RELEASE = """
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    topic         TEXT NOT NULL,
    payload       BLOB NOT NULL,
    needs_receipt INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    sent_at       REAL,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_order ON outbox (priority DESC, seq);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO outbox (event_id, kind, priority, topic, payload, needs_receipt, created_at)
    VALUES ('p1', 'panic', 30, 'gatebox/s/b/panic', x'7b7d', 1, 1.0);
"""

ALERTS_9586F6D = """
CREATE TABLE IF NOT EXISTS alerts (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    camera      TEXT NOT NULL,
    ts          TEXT NOT NULL,
    state       TEXT NOT NULL,
    note        TEXT,
    by          TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    confirmed_at REAL           -- the centre's receipt; 0: raised before receipts were tracked
);
INSERT INTO alerts VALUES ('a1', 'face_match', 'watchlist', 's1', 'gate', '2026-11-30T00:00:00+00:00', 'acked',
    'patrol sent', 'op1', 1.0, 2.0, NULL);
"""
# 27488cf: before receipts were recorded.
ALERTS_FIRST_RELEASE = """
CREATE TABLE alerts (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    camera      TEXT NOT NULL,
    ts          TEXT NOT NULL,
    state       TEXT NOT NULL,
    note        TEXT,
    by          TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
INSERT INTO alerts VALUES ('a0', 'face_match', 'watchlist', 's1', 'gate', '2026-11-30T00:00:00+00:00', 'new',
    NULL, NULL, 1.0, 1.0);
"""

LISTS_9586F6D = """
CREATE TABLE IF NOT EXISTS subjects (
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    name        TEXT,
    updated_at  REAL NOT NULL,
    origin      TEXT NOT NULL DEFAULT 'local',  -- 'local' (gatebox enroll) or 'centre' (synced list)
    category    TEXT,
    priority    INTEGER NOT NULL DEFAULT 0,
    expires_at  REAL,
    plate       TEXT,                           -- plate lists: the normalised plate text
    PRIMARY KEY (list_name, subject_id)
);
CREATE TABLE IF NOT EXISTS list_versions (
    list_name   TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    applied_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS face_embeddings (
    id          INTEGER PRIMARY KEY,
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    embedding   BLOB NOT NULL,
    source      TEXT NOT NULL,
    embedder    TEXT NOT NULL DEFAULT 'dlib-resnet-v1',  -- the EmbedderSpec id that made the row
    FOREIGN KEY (list_name, subject_id) REFERENCES subjects (list_name, subject_id) ON DELETE CASCADE
);
INSERT INTO subjects VALUES ('watchlist', 'c1', 'From the centre', 1.0, 'centre', 'theft', 2, NULL, NULL);
INSERT INTO subjects VALUES ('plate_watchlist', 'car1', NULL, 1.0, 'centre', NULL, 0, NULL, '粤B12345');
INSERT INTO list_versions VALUES ('watchlist', 4, 1.0);
"""
# 1459f6b (issue 13), before face rows named their embedder.
LISTS_BEFORE_EMBEDDER_IDS = """
CREATE TABLE subjects (list_name TEXT NOT NULL, subject_id TEXT NOT NULL, name TEXT, updated_at REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'local', category TEXT, priority INTEGER NOT NULL DEFAULT 0, expires_at REAL,
    plate TEXT, PRIMARY KEY (list_name, subject_id));
CREATE TABLE list_versions (list_name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at REAL NOT NULL);
CREATE TABLE face_embeddings (id INTEGER PRIMARY KEY, list_name TEXT NOT NULL, subject_id TEXT NOT NULL,
    embedding BLOB NOT NULL, source TEXT NOT NULL,
    FOREIGN KEY (list_name, subject_id) REFERENCES subjects (list_name, subject_id) ON DELETE CASCADE);
INSERT INTO subjects (list_name, subject_id, name, updated_at) VALUES ('watchlist', 'l1', 'Local', 1.0);
"""

CENTRE_9586F6D = """
CREATE TABLE IF NOT EXISTS events (
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- face_match, elder_leaving, plate_match, panic, long_press, cancel
    site        TEXT NOT NULL,
    box_id      TEXT NOT NULL,
    camera      TEXT,
    list_name   TEXT,
    subject_id  TEXT,
    ts          TEXT NOT NULL,
    received_at REAL NOT NULL,
    sequence    INTEGER NOT NULL DEFAULT 1,
    state       TEXT NOT NULL DEFAULT 'new',  -- as the box last reported it
    payload     TEXT NOT NULL,
    snapshot    BLOB,
    requested_state TEXT,               -- what an operator asked for, until the box confirms it
    note        TEXT,
    acted_by    TEXT,
    acted_at    REAL,
    PRIMARY KEY (site, box_id, event_id)
);
CREATE INDEX IF NOT EXISTS events_recent ON events (received_at DESC);
CREATE INDEX IF NOT EXISTS events_box ON events (site, box_id, received_at DESC);
CREATE INDEX IF NOT EXISTS events_open_panics ON events (received_at DESC)
    WHERE kind IN ('panic', 'long_press', 'cancel') AND state != 'closed';
CREATE INDEX IF NOT EXISTS events_id ON events (event_id);
CREATE TABLE IF NOT EXISTS boxes (
    site        TEXT NOT NULL,
    box_id      TEXT NOT NULL,
    online      INTEGER,
    last_seen   REAL,
    heartbeat   TEXT,
    PRIMARY KEY (site, box_id)
);
CREATE TABLE IF NOT EXISTS list_versions (
    site        TEXT NOT NULL,
    box_id      TEXT NOT NULL,
    list_name   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    applied_at  REAL NOT NULL,
    PRIMARY KEY (site, box_id, list_name)
);
CREATE TABLE IF NOT EXISTS actions (      -- what operators did, oldest first
    event_id    TEXT NOT NULL,
    state       TEXT NOT NULL,
    note        TEXT,
    by          TEXT NOT NULL,
    at          REAL NOT NULL,
    site        TEXT,                   -- the event's box (filled in from the event on migration)
    box_id      TEXT
);
CREATE INDEX IF NOT EXISTS actions_event ON actions (event_id);
CREATE TABLE IF NOT EXISTS published_lists (
    list_name   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    bundle      TEXT NOT NULL,          -- path of the bundle file, the base of the next version
    by          TEXT NOT NULL,
    published_at REAL NOT NULL,
    PRIMARY KEY (list_name, version)
);
CREATE TABLE IF NOT EXISTS operators (
    name        TEXT PRIMARY KEY,
    password    TEXT NOT NULL,          -- scrypt hash, see edge.centre.auth
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash  TEXT PRIMARY KEY,       -- sha256 of the cookie: a stolen database holds no live session
    name        TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
PRAGMA user_version = 1;
INSERT INTO events (event_id, kind, site, box_id, ts, received_at, payload, snapshot, state)
    VALUES ('e1', 'face_match', 's1', 'b1', '2026-11-30', 1.0, '{"score": 0.7}', x'ffd8', 'acked');
INSERT INTO actions VALUES ('e1', 'acked', 'patrol sent', 'op1', 2.0, 's1', 'b1');
INSERT INTO published_lists VALUES ('watchlist', 3, 10, '/lists/v3.gbl', 'op1', 3.0);
INSERT INTO operators VALUES ('op1', 'scrypt$hash', 1.0);
"""
# 94a604d, the centre store's first release: events keyed by event_id alone, no operators.
CENTRE_FIRST_RELEASE = """
CREATE TABLE events (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    site        TEXT NOT NULL,
    box_id      TEXT NOT NULL,
    camera      TEXT,
    list_name   TEXT,
    subject_id  TEXT,
    ts          TEXT NOT NULL,
    received_at REAL NOT NULL,
    sequence    INTEGER NOT NULL DEFAULT 1,
    state       TEXT NOT NULL DEFAULT 'new',
    payload     TEXT NOT NULL,
    snapshot    BLOB
);
CREATE INDEX events_recent ON events (received_at DESC);
CREATE TABLE boxes (site TEXT NOT NULL, box_id TEXT NOT NULL, online INTEGER, last_seen REAL, heartbeat TEXT,
    PRIMARY KEY (site, box_id));
CREATE TABLE list_versions (site TEXT NOT NULL, box_id TEXT NOT NULL, list_name TEXT NOT NULL,
    version INTEGER NOT NULL, applied_at REAL NOT NULL, PRIMARY KEY (site, box_id, list_name));
INSERT INTO events (event_id, kind, site, box_id, ts, received_at, payload)
    VALUES ('e0', 'panic', 's1', 'b1', '2026-11-30', 1.0, '{}');
INSERT INTO boxes VALUES ('s1', 'b1', 1, 1.0, NULL);
"""


def old_database(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as old:
        old.executescript(script)
    return path


def version_and_columns(path: Path, table: str) -> tuple[int, list[str]]:
    with closing(sqlite3.connect(path)) as db:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        return db.execute("PRAGMA user_version").fetchone()[0], columns


def test_the_outbox_as_shipped_migrates_on_start(tmp_path: Path) -> None:
    path = old_database(tmp_path / "outbox.sqlite3", OUTBOX_9586F6D)
    outbox = Outbox(path, 10**6)
    try:
        assert outbox.queued("alert") == [("a1", b"{}", True)] and outbox.stats().dropped == {"report": 3}
        outbox.release("a1")
        assert [d[:4] for d in outbox.due(10)] == [("a1", "gatebox/s/b/alert", b"{}", True)]
    finally:
        outbox.close()
    assert version_and_columns(path, "outbox")[0] == outbox_module.SCHEMA.version > 0


def test_the_outbox_of_the_first_release_gets_the_columns_added_since(tmp_path: Path) -> None:
    path = old_database(tmp_path / "outbox.sqlite3", OUTBOX_FIRST_RELEASE)
    outbox = Outbox(path, 10**6)
    try:
        ((event_id, topic, payload, needs_receipt, age),) = outbox.due(10)  # not held; aged by the wall clock
        assert (event_id, topic, payload, needs_receipt) == ("p1", "gatebox/s/b/panic", b"{}", True) and age > 10**6
    finally:
        outbox.close()
    version, columns = version_and_columns(path, "outbox")
    assert version == outbox_module.SCHEMA.version and {"created_mono", "boot_id", "held"} <= set(columns)


def test_the_alert_store_as_shipped_migrates_on_start(tmp_path: Path) -> None:
    old_database(tmp_path / "alerts.sqlite3", ALERTS_9586F6D)
    states = AlertStates(tmp_path)
    try:
        record = states.get("a1")
        assert record is not None and (record.state, record.note, record.by, record.confirmed) == (
            "acked", "patrol sent", "op1", False
        )  # fmt: skip
        assert states.unconfirmed_alerts() == ["a1"]
    finally:
        states.close()
    assert version_and_columns(tmp_path / "alerts.sqlite3", "alerts")[0] == alert_states.SCHEMA.version > 0


def test_the_alert_store_of_the_first_release_reads_as_confirmed(tmp_path: Path) -> None:
    """Its records predate receipts: `confirmed_at` 0 ("unknown"), never waited for."""
    old_database(tmp_path / "alerts.sqlite3", ALERTS_FIRST_RELEASE)
    states = AlertStates(tmp_path)
    try:
        record = states.get("a0")
        assert record is not None and record.confirmed and states.unconfirmed_alerts() == []
    finally:
        states.close()
    assert version_and_columns(tmp_path / "alerts.sqlite3", "alerts")[0] == alert_states.SCHEMA.version


def test_the_list_store_as_shipped_migrates_on_start(tmp_path: Path) -> None:
    old_database(tmp_path / "lists.sqlite3", LISTS_9586F6D)
    with closing(sqlite3.connect(tmp_path / "lists.sqlite3")) as old:
        old.execute("INSERT INTO face_embeddings (list_name, subject_id, embedding, source) VALUES (?, ?, ?, ?)",
                    ("watchlist", "c1", np.full(128, 0.25, "<f4").tobytes(), "centre:v4"))  # fmt: skip
        old.commit()
    store = ListStore(tmp_path)
    try:
        assert [(s.list_name, s.subject_id, s.name, s.embeddings, s.origin, s.plate) for s in store.subjects()] == [
            ("plate_watchlist", "car1", None, 0, "centre", "粤B12345"),
            ("watchlist", "c1", "From the centre", 1, "centre", None),
        ]
        assert store.versions() == {"watchlist": 4} and store.plates() == {"粤B12345": ("plate_watchlist", "car1")}
        assert np.array_equal(store.gallery(["watchlist"]).embeddings, np.full((1, 128), 0.25, np.float32))
        assert store.remove("watchlist", "c1") and store.embedders() == {}  # foreign keys still cascade
    finally:
        store.close()
    assert version_and_columns(tmp_path / "lists.sqlite3", "subjects")[0] == lists.SCHEMA.version > 0


def test_the_list_store_from_before_embedder_ids_gets_them(tmp_path: Path) -> None:
    old_database(tmp_path / "lists.sqlite3", LISTS_BEFORE_EMBEDDER_IDS)
    with closing(sqlite3.connect(tmp_path / "lists.sqlite3")) as old:
        old.execute("INSERT INTO face_embeddings (list_name, subject_id, embedding, source) VALUES (?, ?, ?, ?)",
                    ("watchlist", "l1", np.ones(128, "<f4").tobytes(), "l1.jpg"))  # fmt: skip
        old.commit()
    store = ListStore(tmp_path)
    try:
        assert store.embedders() == {"watchlist": {DLIB_EMBEDDER.id: 1}}
        assert [(s.subject_id, s.origin) for s in store.subjects()] == [("l1", "local")]
    finally:
        store.close()
    version, columns = version_and_columns(tmp_path / "lists.sqlite3", "face_embeddings")
    assert version == lists.SCHEMA.version and "embedder" in columns


def test_the_centre_store_as_shipped_opens_with_its_data(tmp_path: Path) -> None:
    """Already at user_version 1 (its own migration, from before the shared helper): only the later
    migrations run (alerts naming their subject), the data intact."""
    path = old_database(tmp_path / "centre.sqlite3", CENTRE_9586F6D)
    for _ in range(2):
        store = CentreStore(path)
        try:
            event = store.event("e1")
            assert event is not None and (event["state"], event["score"], event["site"]) == ("acked", 0.7, "s1")
            assert event["actions"] == [{"state": "acked", "note": "patrol sent", "by": "op1", "at": 2.0}]
            assert store.snapshot("e1") == b"\xff\xd8" and store.highest_version("watchlist") == 3
            assert store.operators() == ["op1"] and store.operator_password("op1") == "scrypt$hash"
        finally:
            store.close()
    version, columns = version_and_columns(path, "events")
    assert version == centre_store.SCHEMA.version and {"subject_name", "subject_category"} <= set(columns)


def test_the_centre_store_of_the_first_release_migrates_on_start(tmp_path: Path) -> None:
    path = old_database(tmp_path / "centre.sqlite3", CENTRE_FIRST_RELEASE)
    store = CentreStore(path)
    try:
        event = store.event("e0")
        assert event is not None and (event["kind"], event["site"], event["box_id"]) == ("panic", "s1", "b1")
        assert [(b["site"], b["box_id"], b["online"]) for b in store.boxes()] == [("s1", "b1", True)]
        assert store.claim_action(("s1", "b1"), "e0", "acked", "on my way", "op1", 60) == "ok"
        store.set_operator("op1", "scrypt$hash")
        assert store.operators() == ["op1"]
    finally:
        store.close()
    version, columns = version_and_columns(path, "events")
    assert version == centre_store.SCHEMA.version and "requested_state" in columns
    with closing(sqlite3.connect(path)) as db:  # keyed per box now
        key = sorted((row[5], row[1]) for row in db.execute("PRAGMA table_info(events)") if row[5])
        assert [name for _, name in key] == ["site", "box_id", "event_id"]
