"""The centre's record of what the boxes sent: events (alerts, panics) stored once by `event_id`
with their state, box health from availability and heartbeats, which list versions each box has
applied, what the centre published, and the console's operators and sessions.

One writer connection (behind a lock, `synchronous=FULL`: a receipt is sent only after the event is
on disk) and a reader connection per thread, so the console's pages never wait behind a burst of
ingestion, nor behind each other."""

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
from edge.panic.models import PanicEvent
from edge.store.sqlite import connect, open_database

PANIC_KINDS = ("panic", "long_press", "cancel")
STATE_RANK = {"new": 0, "acked": 1, "closed": 2}
OPEN_PANIC = f"(kind IN {PANIC_KINDS} AND state != 'closed')"

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
    state       TEXT NOT NULL DEFAULT 'new',  -- as the box last reported it
    payload     TEXT NOT NULL,
    snapshot    BLOB
);
CREATE INDEX IF NOT EXISTS events_recent ON events (received_at DESC);
CREATE INDEX IF NOT EXISTS events_box ON events (site, box_id, received_at DESC);
-- the few open panics the feed puts on top, found without a scan
CREATE INDEX IF NOT EXISTS events_open_panics ON events (received_at DESC)
    WHERE kind IN ('panic', 'long_press', 'cancel') AND state != 'closed';
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
    at          REAL NOT NULL
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
"""
# Columns added after the first release of the store; older databases get them on open.
ADDED_EVENT_COLUMNS = {"requested_state": "TEXT", "note": "TEXT", "acted_by": "TEXT", "acted_at": "REAL"}
EVENT_COLUMNS = (
    "event_id, kind, site, box_id, camera, list_name, subject_id, ts, received_at, sequence, state, requested_state, "
    "note, acted_by, acted_at, payload, snapshot IS NOT NULL"
)


@dataclass(frozen=True)
class BoxSeen:
    online: bool | None
    last_seen: float | None


@dataclass(frozen=True)
class Ingested:
    kind: str  # what the message was: alert, panic, heartbeat, availability, alert_state, list_ack, ignored
    event_id: str | None = None
    new: bool = False  # a first sighting (not a resend or an older copy)
    receipt_id: str | None = None  # what to confirm to the box
    site: str | None = None
    box_id: str | None = None
    box_before: BoxSeen | None = None  # heartbeat, availability: the box as it was (None: first heard of)
    box_online: bool | None = None  # ... and whether it is online now


@dataclass(frozen=True)
class EventFilter:
    site: str | None = None
    box_id: str | None = None
    kind: str | None = None  # an event kind, or `alert` (any alert) / `panic` (any panic message)
    state: str | None = None  # new, acked, closed, or `open` (not closed)
    limit: int = 100
    offset: int = 0


class CentreStore:
    def __init__(self, path: Path) -> None:
        self._db = open_database(path, SCHEMA, "the centre store", full_sync=True,
                                 added_columns={"events": ADDED_EVENT_COLUMNS})  # fmt: skip
        self._path = path
        self._lock = threading.Lock()
        self._readers = threading.local()
        self._all_readers: list[sqlite3.Connection] = []

    def close(self) -> None:
        with self._lock:
            self._db.close()
            for reader in self._all_readers:
                reader.close()

    # --- what the boxes send -------------------------------------------------------------------

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
                before = self._upsert_box(site, box_id, now, online=online)
                return Ingested("availability", site=site, box_id=box_id, box_before=before, box_online=online)
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError(f"expected a JSON object, got {type(body).__name__}")
            if leaf == topics.ALERT:
                try:
                    alert = Alert.model_validate(body)
                except ValidationError as e:
                    raise ValueError(str(e)) from None
                snapshot = base64.b64decode(alert.snapshot_jpeg_b64)
                details = alert.model_dump_json(by_alias=True, exclude={"snapshot_jpeg_b64"})  # the JPEG is a BLOB
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO events (event_id, kind, site, box_id, camera, list_name, subject_id, ts, "
                    "received_at, payload, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (alert.event_id, alert.kind, site, box_id, alert.camera, alert.list, alert.subject_id,
                     alert.ts.isoformat(), now, details, snapshot),
                )  # fmt: skip
                return Ingested("alert", alert.event_id, cursor.rowcount == 1, alert.event_id, site, box_id)
            if leaf == topics.PANIC:
                try:
                    panic = PanicEvent.model_validate(body)
                except ValidationError as e:
                    raise ValueError(str(e)) from None
                # An event's later messages (more presses, a cancel) replace earlier ones; resends don't.
                # The camera's view comes with the first message only and stays.
                snapshot = base64.b64decode(panic.snapshot_jpeg_b64) if panic.snapshot_jpeg_b64 else None
                details = panic.model_dump_json(by_alias=True, exclude={"snapshot_jpeg_b64"})
                cursor = self._db.execute(
                    "INSERT INTO events (event_id, kind, site, box_id, camera, list_name, subject_id, ts, received_at,"
                    " sequence, payload, snapshot) VALUES (?, ?, ?, ?, ?, 'panic', ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (event_id) DO UPDATE SET kind = excluded.kind, sequence = excluded.sequence, "
                    "payload = excluded.payload, snapshot = COALESCE(events.snapshot, excluded.snapshot) "
                    "WHERE excluded.sequence > events.sequence",
                    (panic.event_id, panic.kind, site, box_id, panic.camera, panic.device_id,
                     panic.pressed_at.isoformat(), now, panic.sequence, details, snapshot),
                )  # fmt: skip
                return Ingested("panic", panic.event_id, cursor.rowcount == 1, panic.message_id, site, box_id)
            if leaf == topics.HEARTBEAT:
                before = self._upsert_box(site, box_id, now, online=True, heartbeat=payload.decode())
                return Ingested("heartbeat", site=site, box_id=box_id, box_before=before, box_online=True)
            if leaf == topics.ALERT_STATE:
                state, event_id = body["state"], str(body["event_id"])
                if state not in STATE_RANK:
                    raise ValueError(f"unknown alert state {state!r}")
                self._db.execute("UPDATE events SET state = ? WHERE event_id = ?", (state, event_id))
                return Ingested("alert_state", event_id, site=site, box_id=box_id)
            if leaf == topics.LIST_ACK:
                self._db.execute(
                    "INSERT OR REPLACE INTO list_versions VALUES (?, ?, ?, ?, ?)",
                    (site, box_id, str(body["list"]), int(body["version"]), now),
                )
                return Ingested("list_ack", site=site, box_id=box_id)
        return Ingested("ignored")

    def _upsert_box(self, site: str, box_id: str, now: float, online: bool | None = None,
                    heartbeat: str | None = None) -> BoxSeen | None:  # fmt: skip
        """Returns the box as it was before (None when first heard of)."""
        row = self._db.execute("SELECT online, last_seen FROM boxes WHERE site = ? AND box_id = ?",
                               (site, box_id)).fetchone()  # fmt: skip
        self._db.execute(
            "INSERT INTO boxes (site, box_id, online, last_seen, heartbeat) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (site, box_id) DO UPDATE SET online = COALESCE(excluded.online, boxes.online), "
            "last_seen = excluded.last_seen, heartbeat = COALESCE(excluded.heartbeat, boxes.heartbeat)",
            (site, box_id, None if online is None else int(online), now, heartbeat),
        )
        return None if row is None else BoxSeen(None if row[0] is None else bool(row[0]), row[1])

    # --- what the console reads ----------------------------------------------------------------

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        """A read on this thread's own connection: the console's requests never queue behind each
        other (WAL lets readers run beside the writer)."""
        reader = getattr(self._readers, "connection", None)
        if reader is None:
            reader = connect(self._path)
            self._readers.connection = reader
            with self._lock:
                self._all_readers.append(reader)
        return reader.execute(sql, args).fetchall()

    def events(self, where: EventFilter | None = None, limit: int | None = None) -> list[dict[str, object]]:
        """Open panics first, then newest first. Two walks down the `received_at` index, each
        stopping at `offset + limit` rows, so the feed costs the same at 10,000 events as at 100."""
        where = where or EventFilter()
        limit = limit or where.limit
        clauses, args = [], []
        for column, value in (("site", where.site), ("box_id", where.box_id)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if where.kind == "panic":
            clauses.append(f"kind IN {PANIC_KINDS}")
        elif where.kind == "alert":
            clauses.append(f"kind NOT IN {PANIC_KINDS}")
        elif where.kind:
            clauses.append("kind = ?")
            args.append(where.kind)
        if where.state == "open":
            clauses.append("state != 'closed'")
        elif where.state:
            clauses.append("state = ?")
            args.append(where.state)
        wanted = where.offset + limit
        rows = []
        for part in (OPEN_PANIC, f"NOT {OPEN_PANIC}"):
            sql = (
                f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join([*clauses, part])} "
                "ORDER BY received_at DESC LIMIT ?"
            )
            rows += self._read(sql, (*args, wanted - len(rows)))
            if len(rows) >= wanted:
                break
        return [_event_row(row) for row in rows[where.offset : wanted]]

    def event(self, event_id: str) -> dict[str, object] | None:
        rows = self._read(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ?", (event_id,))
        if not rows:
            return None
        event = _event_row(rows[0])
        event["actions"] = [
            {"state": s, "note": n, "by": b, "at": at}
            for s, n, b, at in self._read(
                "SELECT state, note, by, at FROM actions WHERE event_id = ? ORDER BY rowid", (event_id,)
            )
        ]
        return event

    def snapshot(self, event_id: str) -> bytes | None:
        rows = self._read("SELECT snapshot FROM events WHERE event_id = ?", (event_id,))
        return rows[0][0] if rows else None

    def count_events(self) -> int:
        return self._read("SELECT COUNT(*) FROM events")[0][0]

    def boxes(self) -> list[dict[str, object]]:
        rows = self._read("SELECT site, box_id, online, last_seen, heartbeat FROM boxes ORDER BY 1, 2")
        versions = self._read("SELECT site, box_id, list_name, version FROM list_versions")
        lists: dict[tuple[str, str], dict[str, int]] = {}
        for site, box_id, name, version in versions:
            lists.setdefault((site, box_id), {})[name] = version
        return [
            {"site": s, "box_id": b, "online": None if o is None else bool(o), "last_seen": seen,
             "heartbeat": json.loads(h) if h else None, "lists": lists.get((s, b), {})}
            for s, b, o, seen, h in rows
        ]  # fmt: skip

    # --- what operators do ---------------------------------------------------------------------

    def claim_action(self, event_id: str, state: str, note: str | None, by: str, resend_after_s: float) -> str:
        """Record an operator's ack/close before it is sent; returns `ok`, `unknown` or `already`
        (the event is already at or past `state`: a second click, or another operator was first).
        The same state may be sent again once the box has left it unconfirmed for `resend_after_s`
        (the box was offline when it went out)."""
        rank = STATE_RANK[state]
        ranks = " ".join(f"WHEN '{s}' THEN {r}" for s, r in STATE_RANK.items())
        now = time.time()
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE events SET requested_state = ?, note = COALESCE(?, note), acted_by = ?, acted_at = ? "
                f"WHERE event_id = ? AND (CASE state {ranks} END) < ? AND ("
                f"(CASE COALESCE(requested_state, state) {ranks} END) < ? "
                f"OR (requested_state = ? AND acted_at < ?))",
                (state, note, by, now, event_id, rank, rank, state, now - resend_after_s),
            )
            if cursor.rowcount == 1:
                self._db.execute("INSERT INTO actions VALUES (?, ?, ?, ?, ?)", (event_id, state, note, by, now))
                return "ok"
            known = self._db.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return "already" if known else "unknown"

    def release_action(self, event_id: str, state: str) -> None:
        """The command could not be sent: forget that attempt, so an operator can try again."""
        with self._lock:
            self._db.execute(
                "DELETE FROM actions WHERE rowid = (SELECT MAX(rowid) FROM actions WHERE event_id = ? AND state = ?)",
                (event_id, state),
            )
            previous = self._db.execute(
                "SELECT state, at FROM actions WHERE event_id = ? ORDER BY rowid DESC LIMIT 1", (event_id,)
            ).fetchone()
            self._db.execute("UPDATE events SET requested_state = ?, acted_at = ? WHERE event_id = ?",
                             (*(previous or (None, None)), event_id))  # fmt: skip

    def forget_snapshots(self, closed_before: float) -> int:
        """Delete the face snapshots of closed events received before `closed_before` (the event
        and its record stay); returns how many."""
        with self._lock:
            return self._db.execute(
                "UPDATE events SET snapshot = NULL WHERE state = 'closed' AND received_at < ? AND snapshot IS NOT NULL",
                (closed_before,),
            ).rowcount

    # --- lists the centre published ------------------------------------------------------------

    def record_published(self, list_name: str, version: int, entries: int, bundle: Path, by: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO published_lists VALUES (?, ?, ?, ?, ?, ?)",
                (list_name, version, entries, str(bundle), by, time.time()),
            )

    def published(self, list_name: str) -> dict[str, object] | None:
        rows = self._read(
            "SELECT version, entries, bundle, by, published_at FROM published_lists WHERE list_name = ? "
            "ORDER BY version DESC LIMIT 1",
            (list_name,),
        )
        if not rows:
            return None
        version, entries, bundle, by, at = rows[0]
        return {"version": version, "entries": entries, "bundle": bundle, "by": by, "published_at": at}

    def highest_version(self, list_name: str) -> int:
        """The highest version of `list_name` published here or applied by any box (0 if none)."""
        rows = self._read(
            "SELECT MAX(v) FROM (SELECT MAX(version) AS v FROM published_lists WHERE list_name = ? "
            "UNION ALL SELECT MAX(version) FROM list_versions WHERE list_name = ?)",
            (list_name, list_name),
        )
        return rows[0][0] or 0

    # --- operators and sessions ----------------------------------------------------------------

    def set_operator(self, name: str, password_hash: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO operators VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET password = excluded.password",
                (name, password_hash, time.time()),
            )
            self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))  # a new password ends old sessions

    def remove_operator(self, name: str) -> bool:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))
            return self._db.execute("DELETE FROM operators WHERE name = ?", (name,)).rowcount == 1

    def operators(self) -> list[str]:
        return [row[0] for row in self._read("SELECT name FROM operators ORDER BY name")]

    def operator_password(self, name: str) -> str | None:
        rows = self._read("SELECT password FROM operators WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def start_session(self, token_hash: str, name: str, expires_at: float) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (token_hash, name, expires_at))

    def session_operator(self, token_hash: str) -> str | None:
        rows = self._read(
            "SELECT name FROM sessions WHERE token_hash = ? AND expires_at > ?", (token_hash, time.time())
        )
        return rows[0][0] if rows else None

    def end_session(self, token_hash: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


def _event_row(row: tuple) -> dict[str, object]:
    """One event for the console: the columns, plus what the page shows from its payload."""
    (event_id, kind, site, box_id, camera, list_name, subject_id, ts, received_at, sequence, state, requested,
     note, acted_by, acted_at, payload, has_snapshot) = row  # fmt: skip
    body = json.loads(payload)
    location = body.get("location") or {}
    return {
        "event_id": event_id, "kind": kind, "panic": kind in PANIC_KINDS, "site": site, "box_id": box_id,
        "camera": camera, "list": list_name, "subject_id": subject_id, "ts": ts, "received_at": received_at,
        "sequence": sequence, "state": state, "requested_state": requested, "note": note, "acted_by": acted_by,
        "acted_at": acted_at, "has_snapshot": bool(has_snapshot), "score": body.get("score"),
        "list_version": body.get("list_version"), "gate": location.get("gate"), "site_name": location.get("site_name"),
        "lat": location.get("lat"), "lon": location.get("lon"), "plate": body.get("plate"),
        "plate_read": body.get("plate_read"), "device_id": body.get("device_id"), "household": body.get("household"),
        "address": body.get("address"), "presses": body.get("presses"), "battery": body.get("battery"),
    }  # fmt: skip
