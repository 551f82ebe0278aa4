"""The centre's record of what the boxes sent: events (alerts, panics) stored once by `event_id`
with their state, box health from availability and heartbeats, and which list versions each box
has applied. The backend of the centre's console; fed by `gatebox centre record`."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from edge.alerts import Alert
from edge.comms import topics
from edge.errors import GateboxError
from edge.panic.models import PanicEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,          -- face_match, elder_leaving, plate_match, panic, long_press, cancel
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
CREATE INDEX IF NOT EXISTS events_recent ON events (received_at DESC);
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
"""


@dataclass(frozen=True)
class Ingested:
    kind: str  # what the message was: alert, panic, heartbeat, availability, alert_state, list_ack, ignored
    event_id: str | None = None
    new: bool = False  # a first sighting (not a resend or an older copy)
    receipt_id: str | None = None  # what to confirm to the box


class CentreStore:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise GateboxError(f"cannot open the centre store {path}: {e}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def ingest(self, topic: str, payload: bytes) -> Ingested:
        """Store one message from a box; raises ValueError for a payload that is not what its topic says."""
        parts = topic.split("/")
        if len(parts) != 4:
            return Ingested("ignored")
        _, site, box_id, leaf = parts
        now = time.time()
        with self._lock:
            if leaf == topics.AVAILABILITY:
                online = payload == topics.ONLINE.encode()
                self._upsert_box(site, box_id, now, online=online)
                return Ingested("availability")
            body = json.loads(payload)
            if leaf == topics.ALERT:
                try:
                    alert = Alert.model_validate(body)
                except ValidationError as e:
                    raise ValueError(str(e)) from None
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO events (event_id, kind, site, box_id, camera, list_name, subject_id, ts, "
                    "received_at, payload, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (alert.event_id, alert.kind, site, box_id, alert.camera, alert.list, alert.subject_id,
                     alert.ts.isoformat(), now, payload.decode(), base64.b64decode(alert.snapshot_jpeg_b64)),
                )  # fmt: skip
                return Ingested("alert", alert.event_id, cursor.rowcount == 1, alert.event_id)
            if leaf == topics.PANIC:
                try:
                    panic = PanicEvent.model_validate(body)
                except ValidationError as e:
                    raise ValueError(str(e)) from None
                # An event's later messages (more presses, a cancel) replace earlier ones; resends don't.
                cursor = self._db.execute(
                    "INSERT INTO events (event_id, kind, site, box_id, camera, list_name, subject_id, ts, received_at,"
                    " sequence, payload) VALUES (?, ?, ?, ?, ?, 'panic', ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO "
                    "UPDATE SET kind = excluded.kind, sequence = excluded.sequence, payload = excluded.payload "
                    "WHERE excluded.sequence > events.sequence",
                    (panic.event_id, panic.kind, site, box_id, panic.camera, panic.device_id,
                     panic.pressed_at.isoformat(), now, panic.sequence, payload.decode()),
                )  # fmt: skip
                return Ingested("panic", panic.event_id, cursor.rowcount == 1, panic.message_id)
            if leaf == topics.HEARTBEAT:
                self._upsert_box(site, box_id, now, heartbeat=payload.decode())
                return Ingested("heartbeat")
            if leaf == topics.ALERT_STATE:
                self._db.execute("UPDATE events SET state = ? WHERE event_id = ?", (body["state"], body["event_id"]))
                return Ingested("alert_state", body["event_id"])
            if leaf == topics.LIST_ACK:
                self._db.execute(
                    "INSERT OR REPLACE INTO list_versions VALUES (?, ?, ?, ?, ?)",
                    (site, box_id, body["list"], int(body["version"]), now),
                )
                return Ingested("list_ack")
        return Ingested("ignored")

    def _upsert_box(self, site: str, box_id: str, now: float, online: bool | None = None,
                    heartbeat: str | None = None) -> None:  # fmt: skip
        self._db.execute(
            "INSERT INTO boxes (site, box_id, online, last_seen, heartbeat) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (site, box_id) DO UPDATE SET online = COALESCE(excluded.online, boxes.online), "
            "last_seen = excluded.last_seen, heartbeat = COALESCE(excluded.heartbeat, boxes.heartbeat)",
            (site, box_id, None if online is None else int(online), now, heartbeat),
        )

    def events(self, limit: int = 100) -> list[dict[str, object]]:
        """Newest first, panics before everything else."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, kind, site, box_id, camera, list_name, subject_id, ts, state, sequence FROM events "
                "ORDER BY kind IN ('panic', 'long_press', 'cancel') DESC, received_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("event_id", "kind", "site", "box_id", "camera", "list", "subject_id", "ts", "state", "sequence")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def boxes(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT site, box_id, online, last_seen, heartbeat FROM boxes ORDER BY 1, 2"
            ).fetchall()
            versions = self._db.execute("SELECT site, box_id, list_name, version FROM list_versions").fetchall()
        lists: dict[tuple[str, str], dict[str, int]] = {}
        for site, box_id, name, version in versions:
            lists.setdefault((site, box_id), {})[name] = version
        return [
            {"site": s, "box_id": b, "online": None if o is None else bool(o), "last_seen": seen,
             "heartbeat": json.loads(h) if h else None, "lists": lists.get((s, b), {})}
            for s, b, o, seen, h in rows
        ]  # fmt: skip
