"""The centre's record of what the boxes sent: events (alerts, panics) stored once per box and
`event_id` with their state, box health from availability and heartbeats, which list versions each
box has applied, what the centre published, and the console's operators and sessions.

Every message is bounded and validated by its model before it touches the database, and bound to
the box whose topic it came on (the broker's ACL ties a topic to a box's login): a box can change
only its own events, whatever ids it names.

In an SQLite file or a PostgreSQL database (`centre.database`: the same SQL, one schema per backend).
One writer connection (behind a lock, `synchronous=FULL`: a receipt is sent only after the event is
on disk) and a reader connection per thread, so the console's pages never wait behind a burst of
ingestion, nor behind each other."""

from __future__ import annotations

import base64
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from pydantic import ValidationError

from centre.database import (
    Database,
    DatabaseLocation,
    Dialect,
    PostgresDatabase,
    PostgresMigration,
    is_postgres,
    open_store_database,
)
from centre.passages import PassageLog, passages_location
from edge.protocol import topics
from edge.protocol.alert import Alert, Location
from edge.protocol.bundle import Manifest
from edge.protocol.messages import AckState, AlertState, Heartbeat, ListAck, Passage
from edge.protocol.panic import PanicEvent
from edge.protocol.sqlite import Migration, Schema, add_columns
from edge.protocol.wire import DEFAULT_MAX_MESSAGE_BYTES, MAX_SAFE_INT, Refused, load_json

log = logging.getLogger(__name__)

SLUG = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a site or box in a topic, as the config allows them
PANIC_KINDS = ("panic", "long_press", "cancel")
STATE_RANK = {"new": 0, "acked": 1, "closed": 2}
OPEN_PANIC = f"(kind IN {PANIC_KINDS} AND state != 'closed')"

# Each box's events are its own: keyed by (site, box_id, event_id), so a box naming another box's
# event_id creates (or changes) only an event of its own. Databases from before (user_version 0)
# keyed events by event_id alone; `_migrate` rebuilds such a table.
EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
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
)"""
EVENT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_recent ON events (received_at DESC)",
    "CREATE INDEX IF NOT EXISTS events_box ON events (site, box_id, received_at DESC)",
    # the few open panics the feed puts on top, found without a scan
    "CREATE INDEX IF NOT EXISTS events_open_panics ON events (received_at DESC) "
    "WHERE kind IN ('panic', 'long_press', 'cancel') AND state != 'closed'",
    "CREATE INDEX IF NOT EXISTS events_id ON events (event_id)",  # the console looks events up by id
)
TABLES = f"""
{EVENTS_TABLE.format(name="events")};
{";".join(EVENT_INDEXES)};
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
    password    TEXT NOT NULL,          -- scrypt hash, see centre.auth
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash  TEXT PRIMARY KEY,       -- sha256 of the cookie: a stolen database holds no live session
    name        TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
"""
# Columns added after the first release of the store; older databases get them when migrated.
ADDED_COLUMNS = {
    "events": {"requested_state": "TEXT", "note": "TEXT", "acted_by": "TEXT", "acted_at": "REAL"},
    "actions": {"site": "TEXT", "box_id": "TEXT"},
}
EVENT_KEY = "site = ? AND box_id = ? AND event_id = ?"
# Versions of a list (twice its name) the centre published: from the console, or signed on the broker.
PUBLISHED_VERSIONS = (
    "SELECT version FROM published_lists WHERE list_name = ? UNION ALL "
    "SELECT version FROM list_manifests WHERE list_name = ?"
)
HIGHEST_PUBLISHED = f"SELECT MAX(version) FROM ({PUBLISHED_VERSIONS}) AS published"
EVENT_COLUMNS = (
    "event_id, kind, site, box_id, camera, list_name, subject_id, ts, received_at, sequence, state, requested_state, "
    "note, acted_by, acted_at, payload, snapshot IS NOT NULL, subject_name, subject_category, subject_priority"
)
# Who an alert's subject is, as the box's list entry says (alerts from boxes before these fields: NULL).
SUBJECT_COLUMNS = {"subject_name": "TEXT", "subject_category": "TEXT", "subject_priority": "INTEGER"}


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
    clashes_with: tuple[tuple[str, str], ...] = ()  # other boxes (site, box_id) that sent the same event_id
    lists_changed: bool = False  # heartbeat: the list versions the box reports are not what it reported before


class BoxRow(TypedDict):
    """A box as the console shows it: from its availability, last heartbeat and list acks."""

    site: str
    box_id: str
    online: bool | None  # None: no availability message yet
    last_seen: float | None
    heartbeat: dict[str, Any] | None  # the last heartbeat (`Heartbeat`, dumped by alias)
    lists: dict[str, int]  # list name -> version the box applied


class PublishedRow(TypedDict):
    """The latest version of a list this centre published."""

    version: int
    entries: int
    bundle: str  # path of the bundle file, the base of the next version
    by: str
    published_at: float


class AmbiguousEvent(Exception):
    """Several boxes sent this event_id: say which box's event is meant (site and box_id)."""


@dataclass(frozen=True)
class EventFilter:
    site: str | None = None
    box_id: str | None = None
    kind: str | None = None  # an event kind, or `alert` (any alert) / `panic` (any panic message)
    state: str | None = None  # new, acked, closed, or `open` (not closed)
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class HistoryFilter:
    """A search of past events; every field given narrows it."""

    subject: str | None = None  # part of the subject id, the subject's name, or a panic's household or device
    list_name: str | None = None
    site: str | None = None
    box_id: str | None = None
    gate: str | None = None  # the gate's name, as the box's config gives it
    kind: str | None = None  # an event kind, or `alert` / `panic` as in EventFilter
    state: str | None = None  # new, acked, closed, or `open`
    since: float | None = None  # received at the centre at or after (seconds since the epoch)
    until: float | None = None  # ... and before

    def sql(self, dialect: Dialect) -> tuple[list[str], list[object]]:
        clauses, args = _kind_and_state(self.kind, self.state)
        for column, value in (("site", self.site), ("box_id", self.box_id), ("list_name", self.list_name)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.gate:
            clauses.append(f"{dialect.json_text('payload', 'location', 'gate')} = ?")
            args.append(self.gate)
        if self.subject:
            pattern = "%" + self.subject.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            like = f"{dialect.like} ? ESCAPE '\\'"
            clauses.append(
                f"(subject_id {like} OR {dialect.json_text('payload', 'name')} {like} "
                f"OR {dialect.json_text('payload', 'household')} {like} "
                "OR subject_id IN (SELECT subject_id FROM subjects WHERE list_name = events.list_name "
                f"AND name {like}))"
            )
            args += [pattern] * 4
        if self.since is not None:
            clauses.append("received_at >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("received_at < ?")
            args.append(self.until)
        return clauses, args


@dataclass(frozen=True)
class SubjectRecord:
    """What the centre keeps of a subject of a list it built: shown beside the subject's alerts."""

    subject_id: str
    name: str | None = None
    category: str | None = None
    priority: int | None = None
    reference: bytes | None = None  # one enrolled photo, a small JPEG


class CentreStore:
    def __init__(self, location: DatabaseLocation, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        """`location`: an SQLite file (one centre) or a PostgreSQL URL (several workers share it)."""
        self._db: Database = open_store_database(location, "the centre store", SCHEMA, "centre", POSTGRES_SCHEMA)
        self.location = location
        self._max_message_bytes = max_message_bytes
        self._lock = threading.Lock()
        self._readers = threading.local()
        self._all_readers: list[Database] = []
        try:
            # people and vehicles that passed, hourly totals
            self.passages = PassageLog(passages_location(location))
        except BaseException:
            self._db.close()
            raise

    @property
    def shared(self) -> bool:
        """Whether other workers may write this database too (PostgreSQL)."""
        return is_postgres(self.location)

    def notify_workers(self, channel: str, payload: str) -> None:
        """PostgreSQL's NOTIFY to every worker LISTENing on `channel` (`centre.workers`)."""
        if not isinstance(self._db, PostgresDatabase):
            raise TypeError("only workers sharing a PostgreSQL database hear each other")
        with self._lock:
            self._db.notify(channel, payload)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            for reader in self._all_readers:
                reader.close()
        self.passages.close()

    # --- what the boxes send -------------------------------------------------------------------

    def ingest(self, topic: str, payload: bytes) -> Ingested:
        """Store one message from a box. Raises `Refused` (a ValueError) for a message that is too
        large, too deep, not what its topic says, or names another box: nothing is stored then."""
        parts = topic.split("/")
        if len(parts) != 4:
            return Ingested("ignored")
        _, site, box_id, leaf = parts
        if leaf not in INGESTED_MODELS and leaf != topics.AVAILABILITY:
            return Ingested("ignored")
        if not (SLUG.match(site) and SLUG.match(box_id)):
            raise Refused("bad_topic", f"not a site/box a box can have: {topic[:200]!r}")
        if len(payload) > self._max_message_bytes:
            raise Refused("too_large", f"{len(payload)} bytes, over the limit of {self._max_message_bytes}")
        if leaf == topics.AVAILABILITY:
            if payload not in (topics.ONLINE.encode(), topics.OFFLINE.encode()):
                raise Refused("invalid", f"availability is `online` or `offline`, not {payload[:40]!r}")
            online = payload == topics.ONLINE.encode()
            with self._lock:
                before = self._upsert_box(site, box_id, time.time(), online=online)
            return Ingested("availability", site=site, box_id=box_id, box_before=before, box_online=online)
        model = INGESTED_MODELS[leaf]
        body = load_json(payload, self._max_message_bytes)
        try:
            message = model.model_validate(body)
        except ValidationError as e:
            raise Refused("invalid", _validation_summary(e)) from None
        claimed = (getattr(message, "site", None), getattr(message, "box_id", None))
        if claimed != (None, None) and claimed != (site, box_id):
            raise Refused("wrong_box", f"the body says {claimed[0]}/{claimed[1]}, the topic {site}/{box_id}")
        if isinstance(message, Passage):  # its own database, its own lock
            new = self.passages.add(site, box_id, message)
            return Ingested("passage", message.passage_id, new, site=site, box_id=box_id)
        with self._lock:
            if isinstance(message, Alert):
                return self._alert(site, box_id, message)
            if isinstance(message, PanicEvent):
                return self._panic(site, box_id, message)
            if isinstance(message, Heartbeat):
                held_before = self._db.execute("SELECT heartbeat FROM boxes WHERE site = ? AND box_id = ?",
                                               (site, box_id)).fetchone()  # fmt: skip
                before = self._upsert_box(site, box_id, time.time(), online=True,
                                          heartbeat=message.model_dump_json(by_alias=True))  # fmt: skip
                lists_changed = _reported_versions(_heartbeat(held_before[0] if held_before else None)) != (
                    _reported_versions(message.model_dump(by_alias=True))
                )
                return Ingested("heartbeat", site=site, box_id=box_id, box_before=before, box_online=True,
                                lists_changed=lists_changed)  # fmt: skip
            if isinstance(message, AlertState):
                updated = self._db.execute(
                    f"UPDATE events SET state = ? WHERE {EVENT_KEY}", (message.state, site, box_id, message.event_id)
                ).rowcount
                if not updated:  # never another box's event of the same id
                    raise Refused("unknown_event", f"{site}/{box_id} sent no event {message.event_id}")
                return Ingested("alert_state", message.event_id, site=site, box_id=box_id)
            published = self._db.execute(HIGHEST_PUBLISHED, (message.list, message.list)).fetchone()[0]
            if published is not None and message.version > published:
                raise Refused("unpublished_version", f"{message.list} v{message.version}: this centre published up "
                              f"to v{published}")  # fmt: skip
            self._db.execute("INSERT INTO list_versions VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, box_id, list_name) "
                             "DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at",
                             (site, box_id, message.list, message.version, time.time()))  # fmt: skip
            return Ingested("list_ack", site=site, box_id=box_id)

    def _alert(self, site: str, box_id: str, alert: Alert) -> Ingested:
        snapshot = base64.b64decode(alert.snapshot_jpeg_b64)
        details = alert.model_dump_json(by_alias=True, exclude={"snapshot_jpeg_b64"})  # the JPEG is a BLOB
        # Exactly once, whatever the box resends and however many workers receive it: the insert is keyed
        # by (site, box_id, event_id) and does nothing for a copy (on PostgreSQL a second worker inserting
        # the same key waits for the first's commit, then does nothing); it commits before `ingest` returns,
        # and only then does the recorder send the receipt, so a box forgets an alert only once it is stored.
        cursor = self._db.execute(
            "INSERT INTO events (event_id, kind, site, box_id, camera, list_name, subject_id, ts, "
            "received_at, payload, snapshot, subject_name, subject_category, subject_priority) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, box_id, event_id) DO NOTHING",
            (alert.event_id, alert.kind, site, box_id, alert.camera, alert.list, alert.subject_id,
             alert.ts.isoformat(), time.time(), details, snapshot, alert.subject_name, alert.subject_category,
             alert.subject_priority),
        )  # fmt: skip
        new = cursor.rowcount == 1
        if new:
            self._locate(site, box_id, alert.location)
        return Ingested("alert", alert.event_id, new, alert.event_id, site, box_id,
                        clashes_with=self._clashes(site, box_id, alert.event_id) if new else ())  # fmt: skip

    def _panic(self, site: str, box_id: str, panic: PanicEvent) -> Ingested:
        # An event's later messages (more presses, a cancel) replace earlier ones; resends don't.
        # The camera's view comes with the first message only and stays. Only this box's panic of
        # that id is touched, never its alert of the same id.
        snapshot = base64.b64decode(panic.snapshot_jpeg_b64) if panic.snapshot_jpeg_b64 else None
        details = panic.model_dump_json(by_alias=True, exclude={"snapshot_jpeg_b64"})
        cursor = self._db.execute(
            "INSERT INTO events (event_id, kind, site, box_id, camera, list_name, subject_id, ts, received_at,"
            " sequence, payload, snapshot) VALUES (?, ?, ?, ?, ?, 'panic', ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site, box_id, event_id) DO UPDATE SET kind = excluded.kind, sequence = excluded.sequence, "
            "payload = excluded.payload, snapshot = COALESCE(events.snapshot, excluded.snapshot) "
            f"WHERE excluded.sequence > events.sequence AND events.kind IN {PANIC_KINDS}",
            (panic.event_id, panic.kind, site, box_id, panic.camera, panic.device_id,
             panic.pressed_at.isoformat(), time.time(), panic.sequence, details, snapshot),
        )  # fmt: skip
        new = cursor.rowcount == 1
        if new:
            self._locate(site, box_id, panic.location)
        return Ingested("panic", panic.event_id, new, panic.message_id, site, box_id,
                        clashes_with=self._clashes(site, box_id, panic.event_id) if new else ())  # fmt: skip

    def _locate(self, site: str, box_id: str, location: Location | None) -> None:
        """Where the box's gate is, as its latest event says (the map's gates)."""
        if location is None or location.lat is None or location.lon is None:
            return
        self._db.execute(
            "INSERT INTO gates (site, box_id, gate, lat, lon, seen_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site, box_id) DO UPDATE SET gate = excluded.gate, lat = excluded.lat, lon = excluded.lon, "
            "seen_at = excluded.seen_at",
            (site, box_id, location.gate, location.lat, location.lon, time.time()),
        )

    def _clashes(self, site: str, box_id: str, event_id: str) -> tuple[tuple[str, str], ...]:
        """Other boxes that sent `event_id` (ids are random: a clash is a box copying another's)."""
        rows = self._db.execute(
            "SELECT site, box_id FROM events WHERE event_id = ? AND NOT (site = ? AND box_id = ?)",
            (event_id, site, box_id),
        ).fetchall()
        return tuple((s, b) for s, b in rows)

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

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """A read on this thread's own connection: the console's requests never queue behind each
        other (WAL lets readers run beside the writer)."""
        reader = getattr(self._readers, "connection", None)
        if reader is None:
            reader = self._db.reader()
            self._readers.connection = reader
            with self._lock:
                self._all_readers.append(reader)
        return reader.execute(sql, args).fetchall()

    def events(self, where: EventFilter | None = None, limit: int | None = None) -> list[dict[str, object]]:
        """Open panics first, then newest first. Two walks down the `received_at` index, each
        stopping at `offset + limit` rows, so the feed costs the same at 10,000 events as at 100."""
        where = where or EventFilter()
        limit = limit or where.limit
        clauses, args = _kind_and_state(where.kind, where.state)
        for column, value in (("site", where.site), ("box_id", where.box_id)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        wanted = where.offset + limit
        rows: list[tuple[Any, ...]] = []
        for part in (OPEN_PANIC, f"NOT {OPEN_PANIC}"):
            sql = (
                f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join([*clauses, part])} "
                "ORDER BY received_at DESC LIMIT ?"
            )
            rows += self._read(sql, (*args, wanted - len(rows)))
            if len(rows) >= wanted:
                break
        return [_event_row(row) for row in rows[where.offset : wanted]]

    def find(self, event_id: str, site: str | None = None, box_id: str | None = None) -> tuple[str, str] | None:
        """The (site, box_id) of the box whose event `event_id` is; None if there is none. Ids are
        random, so one box has it; a second is a box copying another's id: then AmbiguousEvent
        unless `site` and `box_id` say which."""
        clauses, args = ["event_id = ?"], [event_id]
        for column, value in (("site", site), ("box_id", box_id)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        rows = self._read(f"SELECT site, box_id FROM events WHERE {' AND '.join(clauses)} LIMIT 2", tuple(args))
        if len(rows) > 1:
            raise AmbiguousEvent(f"{event_id} was sent by several boxes: say which (site and box_id)")
        return (rows[0][0], rows[0][1]) if rows else None

    def event(self, event_id: str, site: str | None = None, box_id: str | None = None) -> dict[str, object] | None:
        """One event with what operators did to it; None if unknown. Raises AmbiguousEvent."""
        key = self.find(event_id, site, box_id)
        if key is None:
            return None
        rows = self._read(f"SELECT {EVENT_COLUMNS} FROM events WHERE {EVENT_KEY}", (*key, event_id))
        if not rows:
            return None
        event = _event_row(rows[0])
        event["actions"] = [
            {"state": s, "note": n, "by": b, "at": at}
            for s, n, b, at in self._read(
                f'SELECT state, note, "by", at FROM actions WHERE {EVENT_KEY} ORDER BY rowid', (*key, event_id)
            )
        ]
        return event

    def snapshot(self, event_id: str, site: str | None = None, box_id: str | None = None) -> bytes | None:
        """Raises AmbiguousEvent."""
        key = self.find(event_id, site, box_id)
        if key is None:
            return None
        rows = self._read(f"SELECT snapshot FROM events WHERE {EVENT_KEY}", (*key, event_id))
        return rows[0][0] if rows else None

    def count_events(self) -> int:
        count: int = self._read("SELECT COUNT(*) FROM events")[0][0]
        return count

    def boxes(self) -> list[BoxRow]:
        rows = self._read("SELECT site, box_id, online, last_seen, heartbeat FROM boxes ORDER BY 1, 2")
        versions = self._read("SELECT site, box_id, list_name, version FROM list_versions")
        lists: dict[tuple[str, str], dict[str, int]] = {}
        for site, box_id, name, version in versions:
            lists.setdefault((site, box_id), {})[name] = version
        out: list[BoxRow] = []
        for s, b, o, seen, h in rows:
            heartbeat = _heartbeat(h)
            # What the box holds, whoever published it: its list_acks (of versions this centre published
            # or knows nothing against) and the versions its heartbeat reports, the later of the two (a
            # box's version of a list only ever goes up).
            held = dict(lists.get((s, b), {}))
            for name, version in _reported_versions(heartbeat).items():
                held[name] = max(version, held.get(name, 0))
            out.append(BoxRow({"site": s, "box_id": b, "online": None if o is None else bool(o), "last_seen": seen,
                        "heartbeat": heartbeat, "lists": held}))  # fmt: skip
        return out

    def gates(self) -> list[dict[str, object]]:
        """Each box's gate as its latest located event placed it: site, box_id, gate, lat, lon, seen_at."""
        rows = self._read("SELECT site, box_id, gate, lat, lon, seen_at FROM gates ORDER BY 1, 2")
        return [{"site": s, "box_id": b, "gate": g, "lat": lat, "lon": lon, "seen_at": at}
                for s, b, g, lat, lon, at in rows]  # fmt: skip

    # --- history ---------------------------------------------------------------------------------

    def history(self, where: HistoryFilter, limit: int, before: tuple[float, int] | None = None
                ) -> tuple[list[dict[str, object]], tuple[float, int] | None]:  # fmt: skip
        """Events matching `where`, newest first, `limit` at a time: the page and the cursor of the next
        one (None at the end). The cursor is (received_at, rowid) of the last event given, so a page
        costs the same however deep it is."""
        clauses, args = where.sql(self._db.dialect)
        if before is not None:
            clauses.append("(received_at < ? OR (received_at = ? AND rowid < ?))")
            args += [before[0], before[0], before[1]]
        sql = (f"SELECT rowid, {EVENT_COLUMNS} FROM events {_where(clauses)} "
               "ORDER BY received_at DESC, rowid DESC LIMIT ?")  # fmt: skip
        rows = self._read(sql, (*args, limit + 1))
        events = [_event_row(row[1:]) for row in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        return events, (None if last is None else (float(last[9]), int(last[0])))

    def count_history(self, where: HistoryFilter) -> int:
        clauses, args = where.sql(self._db.dialect)
        return int(self._read(f"SELECT COUNT(*) FROM events {_where(clauses)}", tuple(args))[0][0])

    def history_with_actions(self, where: HistoryFilter, batch: int = 500) -> Iterator[dict[str, object]]:
        """Every event matching `where`, newest first, each with `actions`: what operators did, oldest
        first (the record an officer hands over)."""
        before: tuple[float, int] | None = None
        while True:
            events, before = self.history(where, batch, before)
            if events:
                keys = [(str(e["site"]), str(e["box_id"]), str(e["event_id"])) for e in events]
                done: dict[tuple[str, str, str], list[dict[str, object]]] = {}
                marks = ", ".join("(?, ?, ?)" for _ in keys)
                for site, box_id, event_id, state, note, by, at in self._read(
                    'SELECT site, box_id, event_id, state, note, "by", at FROM actions '
                    f"WHERE (site, box_id, event_id) IN (VALUES {marks}) ORDER BY rowid",
                    tuple(part for key in keys for part in key),
                ):  # fmt: skip
                    done.setdefault((site, box_id, event_id), []).append(
                        {"state": state, "note": note, "by": by, "at": at}
                    )
                for event, key in zip(events, keys, strict=True):
                    event["actions"] = done.get(key, [])
                    yield event
            if before is None:
                return

    # --- subjects of the lists the centre built ---------------------------------------------------

    def record_subjects(self, list_name: str, subjects: Iterable[SubjectRecord]) -> int:
        """Keep (or replace) what the centre knows of these subjects of `list_name`: name, category,
        priority and one reference photo. Returns how many."""
        rows = [(list_name, s.subject_id, s.name, s.category, s.priority, s.reference, time.time()) for s in subjects]
        with self._lock, self._db.transaction():
            self._db.executemany(
                "INSERT INTO subjects (list_name, subject_id, name, category, priority, reference, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (list_name, subject_id) DO UPDATE SET name = excluded.name, "
                "category = excluded.category, priority = excluded.priority, "
                "reference = COALESCE(excluded.reference, subjects.reference), recorded_at = excluded.recorded_at",
                rows,
            )
        return len(rows)

    def keep_subjects(self, list_name: str, subject_ids: Iterable[str]) -> int:
        """Forget the subjects of `list_name` not in `subject_ids` (taken off the list: their photo goes
        too); returns how many were forgotten."""
        keep = sorted(set(subject_ids))
        with self._lock, self._db.transaction():
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS kept_subjects (subject_id TEXT PRIMARY KEY)")
            self._db.execute("DELETE FROM kept_subjects")
            self._db.executemany("INSERT INTO kept_subjects VALUES (?)", [(k,) for k in keep])
            gone = self._db.execute(
                "DELETE FROM subjects WHERE list_name = ? AND subject_id NOT IN (SELECT subject_id FROM kept_subjects)",
                (list_name,),
            ).rowcount
            self._db.execute("DELETE FROM kept_subjects")
        return gone

    def subject_info(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, object]]:
        """What the centre knows of each (list, subject_id): name, category, priority, has_reference."""
        wanted = sorted(set(keys))
        out: dict[tuple[str, str], dict[str, object]] = {}
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            marks = ", ".join("(?, ?)" for _ in chunk)
            for list_name, subject_id, name, category, priority, has_reference in self._read(
                "SELECT list_name, subject_id, name, category, priority, reference IS NOT NULL FROM subjects "
                f"WHERE (list_name, subject_id) IN (VALUES {marks})", tuple(p for key in chunk for p in key)
            ):  # fmt: skip
                out[(list_name, subject_id)] = {"name": name, "category": category, "priority": priority,
                                                "has_reference": bool(has_reference)}  # fmt: skip
        return out

    def reference(self, list_name: str, subject_id: str) -> bytes | None:
        """The subject's reference photo (JPEG), if the centre built its list."""
        rows = self._read("SELECT reference FROM subjects WHERE list_name = ? AND subject_id = ?",
                          (list_name, subject_id))  # fmt: skip
        return rows[0][0] if rows and rows[0][0] else None

    # --- what operators do ---------------------------------------------------------------------

    def claim_action(self, key: tuple[str, str], event_id: str, state: AckState, note: str | None, by: str,
                     resend_after_s: float) -> str:  # fmt: skip
        """Record an operator's ack/close of box `key`'s (site, box_id) event before it is sent;
        returns `ok`, `unknown` or `already` (the event is already at or past `state`: a second
        click, or another operator was first). The same state may be sent again once the box has
        left it unconfirmed for `resend_after_s` (the box was offline when it went out)."""
        rank = STATE_RANK[state]
        ranks = " ".join(f"WHEN '{s}' THEN {r}" for s, r in STATE_RANK.items())
        now = time.time()
        with self._lock, self._db.transaction():
            cursor = self._db.execute(
                f"UPDATE events SET requested_state = ?, note = COALESCE(?, note), acted_by = ?, acted_at = ? "
                f"WHERE {EVENT_KEY} AND (CASE state {ranks} END) < ? AND ("
                f"(CASE COALESCE(requested_state, state) {ranks} END) < ? "
                f"OR (requested_state = ? AND acted_at < ?))",
                (state, note, by, now, *key, event_id, rank, rank, state, now - resend_after_s),
            )
            if cursor.rowcount == 1:
                self._db.execute('INSERT INTO actions (site, box_id, event_id, state, note, "by", at) '

                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, event_id, state, note, by, now))  # fmt: skip
                return "ok"
            known = self._db.execute(f"SELECT 1 FROM events WHERE {EVENT_KEY}", (*key, event_id)).fetchone()
        return "already" if known else "unknown"

    def release_action(self, key: tuple[str, str], event_id: str, state: AckState) -> None:
        """The command could not be sent: forget that attempt, so an operator can try again."""
        with self._lock, self._db.transaction():
            self._db.execute(
                f"DELETE FROM actions WHERE rowid = (SELECT MAX(rowid) FROM actions WHERE {EVENT_KEY} AND state = ?)",
                (*key, event_id, state),
            )
            previous = self._db.execute(
                f"SELECT state, at FROM actions WHERE {EVENT_KEY} ORDER BY rowid DESC LIMIT 1", (*key, event_id)
            ).fetchone()
            self._db.execute(f"UPDATE events SET requested_state = ?, acted_at = ? WHERE {EVENT_KEY}",
                             (*(previous or (None, None)), *key, event_id))  # fmt: skip

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
        if not 1 <= version <= MAX_SAFE_INT:
            raise ValueError(f"list version {version} is out of range (1 to 2^53)")
        with self._lock:
            self._db.execute(
                "INSERT INTO published_lists VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (list_name, version) DO UPDATE "
                'SET entries = excluded.entries, bundle = excluded.bundle, "by" = excluded."by", '
                "published_at = excluded.published_at",
                (list_name, version, entries, str(bundle), by, time.time()),
            )

    def published(self, list_name: str) -> PublishedRow | None:
        rows = self._read(
            'SELECT version, entries, bundle, "by", published_at FROM published_lists WHERE list_name = ? '
            "ORDER BY version DESC LIMIT 1",
            (list_name,),
        )
        if not rows:
            return None
        version, entries, bundle, by, at = rows[0]
        return {"version": version, "entries": entries, "bundle": bundle, "by": by, "published_at": at}

    def highest_version(self, list_name: str) -> int:
        """The highest version of `list_name` this centre published (0 if none): from this console, or
        seen on the broker in a manifest signed with the centre's key (the CLI's). What boxes say they
        applied never counts: a box could claim any version."""
        rows = self._read(HIGHEST_PUBLISHED, (list_name, list_name))
        return rows[0][0] or 0

    def record_manifest(self, manifest: Manifest) -> bool:
        """Note a list manifest seen on the broker (retained: the one in force); True when it is news."""
        with self._lock:
            return self._db.execute(
                "INSERT INTO list_manifests VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (list_name, kind) DO UPDATE SET "
                "version = excluded.version, entries = excluded.entries, created_at = excluded.created_at, "
                "seen_at = excluded.seen_at WHERE excluded.version != list_manifests.version",
                (manifest.list, manifest.kind, manifest.version, manifest.entries, manifest.created_at.isoformat(),
                 time.time()),
            ).rowcount == 1  # fmt: skip

    def manifests(self) -> dict[str, dict[str, object]]:
        """Per list, the newest version on the broker: version, kind, entries, created_at."""
        out: dict[str, dict[str, object]] = {}
        for name, kind, version, entries, created in self._read(
            "SELECT list_name, kind, version, entries, created_at FROM list_manifests ORDER BY version"
        ):
            out[name] = {"version": version, "kind": kind, "entries": entries, "created_at": created}
        return out

    # --- operators and sessions ----------------------------------------------------------------

    def set_operator(self, name: str, password_hash: str) -> None:
        with self._lock, self._db.transaction():
            self._db.execute(
                "INSERT INTO operators VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET password = excluded.password",
                (name, password_hash, time.time()),
            )
            self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))  # a new password ends old sessions

    def remove_operator(self, name: str) -> bool:
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))
            return self._db.execute("DELETE FROM operators WHERE name = ?", (name,)).rowcount == 1

    def operators(self) -> list[str]:
        return [row[0] for row in self._read("SELECT name FROM operators ORDER BY name")]

    def operator_password(self, name: str) -> str | None:
        rows = self._read("SELECT password FROM operators WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def start_session(self, token_hash: str, name: str, expires_at: float) -> None:
        with self._lock, self._db.transaction():
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


# The model of each message a box sends as JSON (its availability is a bare `online`/`offline`).
INGESTED_MODELS: dict[str, type[Alert | PanicEvent | Heartbeat | AlertState | ListAck | Passage]] = {
    topics.ALERT: Alert, topics.PANIC: PanicEvent, topics.HEARTBEAT: Heartbeat, topics.ALERT_STATE: AlertState,
    topics.LIST_ACK: ListAck, topics.PASSAGE: Passage,
}  # fmt: skip


def _kind_and_state(kind: str | None, state: str | None) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    args: list[object] = []
    if kind == "panic":
        clauses.append(f"kind IN {PANIC_KINDS}")
    elif kind == "alert":
        clauses.append(f"kind NOT IN {PANIC_KINDS}")
    elif kind:
        clauses.append("kind = ?")
        args.append(kind)
    if state == "open":
        clauses.append("state != 'closed'")
    elif state:
        clauses.append("state = ?")
        args.append(state)
    return clauses, args


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _reported_versions(heartbeat: dict[str, object] | None) -> dict[str, int]:
    """The list versions a heartbeat says the box holds (its `lists` report; `rejected` is counts)."""
    lists = heartbeat.get("lists") if heartbeat else None
    out: dict[str, int] = {}
    if isinstance(lists, dict):
        for name, report in lists.items():
            version = report.get("version") if isinstance(report, dict) else None
            if isinstance(version, int) and not isinstance(version, bool):
                out[str(name)] = version
    return out


def _validation_summary(error: ValidationError) -> str:
    """Where and what, without echoing a megabyte of input into the log."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(body)"
    return f"{error.error_count()} invalid field(s); first: {where}: {first['msg'][:100]}"


def _heartbeat(text: str | None) -> dict[str, Any] | None:
    """A stored heartbeat for the page; one stored before heartbeats were validated is shown only
    if it passes the model now."""
    if not text:
        return None
    try:
        return Heartbeat.model_validate_json(text).model_dump(by_alias=True)
    except ValidationError:
        return None


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database an earlier version made (user_version 0) to events keyed per box and
    actions naming their event's box; in the migration's transaction."""
    key = [row[1] for row in sorted(db.execute("PRAGMA table_info(events)"), key=lambda r: r[5]) if row[5]]
    if key != ["site", "box_id", "event_id"]:  # keyed by event_id alone: rebuild the table
        columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(events)"))
        db.execute(EVENTS_TABLE.format(name="events_per_box"))
        db.execute(f"INSERT INTO events_per_box ({columns}) SELECT {columns} FROM events")
        db.execute("DROP TABLE events")
        db.execute("ALTER TABLE events_per_box RENAME TO events")
        for index in EVENT_INDEXES:
            db.execute(index)
        log.info("centre store: events are now keyed per box (site, box_id, event_id)")
    db.execute(
        "UPDATE actions SET (site, box_id) = (SELECT site, box_id FROM events WHERE events.event_id = "
        "actions.event_id) WHERE site IS NULL"
    )


# Version 1 (the store's own migration before the shared helper) is everything up to events keyed
# per box; later changes are later migrations.
CONSOLE_DUTY_TABLES = """
CREATE TABLE IF NOT EXISTS subjects (     -- what the centre keeps of the subjects of lists it built
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    name        TEXT,
    category    TEXT,
    priority    INTEGER,
    reference   BLOB,                   -- one enrolled photo, a small JPEG, shown beside an alert's snapshot
    recorded_at REAL NOT NULL,
    PRIMARY KEY (list_name, subject_id)
);
CREATE TABLE IF NOT EXISTS gates (        -- where each box's gate is, as its latest located event said
    site        TEXT NOT NULL,
    box_id      TEXT NOT NULL,
    gate        TEXT,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    seen_at     REAL NOT NULL,
    PRIMARY KEY (site, box_id)
);
CREATE TABLE IF NOT EXISTS list_manifests (  -- the signed manifests on the broker, whoever published them
    list_name   TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- full or delta
    version     INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    seen_at     REAL NOT NULL,
    PRIMARY KEY (list_name, kind)
);
CREATE INDEX IF NOT EXISTS events_subject ON events (subject_id);
"""


def _locate_known_gates(db: sqlite3.Connection) -> None:
    """Place the gates of boxes whose events came before the map: each box's latest located event."""
    db.execute(
        "INSERT OR IGNORE INTO gates (site, box_id, gate, lat, lon, seen_at) "
        "SELECT site, box_id, json_extract(payload, '$.location.gate'), json_extract(payload, '$.location.lat'), "
        "json_extract(payload, '$.location.lon'), MAX(received_at) FROM events "
        "WHERE json_extract(payload, '$.location.lat') IS NOT NULL AND json_extract(payload, '$.location.lon') "
        "IS NOT NULL GROUP BY site, box_id"
    )


SCHEMA = Schema(
    Migration("events keyed per box", TABLES, *(add_columns(t, c) for t, c in ADDED_COLUMNS.items()), _migrate),
    Migration("alerts name their subject", add_columns("events", SUBJECT_COLUMNS)),
    Migration(
        "subjects' reference photos, the gates' places, list versions on the broker (the console's duty view)",
        CONSOLE_DUTY_TABLES,
        _locate_known_gates,
    ),
)

# The same tables on PostgreSQL (several console workers share them), as SQLite's migrations leave them:
# BIGINT for SQLite's INTEGER (versions reach 2^53), DOUBLE PRECISION for REAL, BYTEA for BLOB, and the
# `rowid` SQLite gives every table declared on the two whose order of arrival matters. Only ever append
# migrations here too; version N is recorded in `gatebox_schema` (`centre.database`).
POSTGRES_SCHEMA = (
    PostgresMigration(
        "the centre store as of SQLite schema version 3",
        """
        CREATE TABLE events (
            event_id TEXT NOT NULL, kind TEXT NOT NULL, site TEXT NOT NULL, box_id TEXT NOT NULL, camera TEXT,
            list_name TEXT, subject_id TEXT, ts TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
            sequence BIGINT NOT NULL DEFAULT 1, state TEXT NOT NULL DEFAULT 'new', payload TEXT NOT NULL,
            snapshot BYTEA, requested_state TEXT, note TEXT, acted_by TEXT, acted_at DOUBLE PRECISION,
            subject_name TEXT, subject_category TEXT, subject_priority BIGINT,
            rowid BIGSERIAL NOT NULL UNIQUE,
            PRIMARY KEY (site, box_id, event_id)
        );
        CREATE INDEX events_recent ON events (received_at DESC);
        CREATE INDEX events_box ON events (site, box_id, received_at DESC);
        CREATE INDEX events_open_panics ON events (received_at DESC)
            WHERE kind IN ('panic', 'long_press', 'cancel') AND state != 'closed';
        CREATE INDEX events_id ON events (event_id);
        CREATE INDEX events_subject ON events (subject_id);
        CREATE TABLE boxes (
            site TEXT NOT NULL, box_id TEXT NOT NULL, online BIGINT, last_seen DOUBLE PRECISION, heartbeat TEXT,
            PRIMARY KEY (site, box_id)
        );
        CREATE TABLE list_versions (
            site TEXT NOT NULL, box_id TEXT NOT NULL, list_name TEXT NOT NULL, version BIGINT NOT NULL,
            applied_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (site, box_id, list_name)
        );
        CREATE TABLE actions (
            event_id TEXT NOT NULL, state TEXT NOT NULL, note TEXT, "by" TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL, site TEXT, box_id TEXT,
            rowid BIGSERIAL PRIMARY KEY
        );
        CREATE INDEX actions_event ON actions (event_id);
        CREATE TABLE published_lists (
            list_name TEXT NOT NULL, version BIGINT NOT NULL, entries BIGINT NOT NULL, bundle TEXT NOT NULL,
            "by" TEXT NOT NULL, published_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (list_name, version)
        );
        CREATE TABLE operators (name TEXT PRIMARY KEY, password TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
        CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
        CREATE TABLE subjects (
            list_name TEXT NOT NULL, subject_id TEXT NOT NULL, name TEXT, category TEXT, priority BIGINT,
            reference BYTEA, recorded_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (list_name, subject_id)
        );
        CREATE TABLE gates (
            site TEXT NOT NULL, box_id TEXT NOT NULL, gate TEXT, lat DOUBLE PRECISION NOT NULL,
            lon DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (site, box_id)
        );
        CREATE TABLE list_manifests (
            list_name TEXT NOT NULL, kind TEXT NOT NULL, version BIGINT NOT NULL, entries BIGINT NOT NULL,
            created_at TEXT NOT NULL, seen_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (list_name, kind)
        )
        """,
    ),
)


def _event_row(row: tuple[Any, ...]) -> dict[str, object]:
    """One event for the console: the columns, plus what the page shows from its payload."""
    (event_id, kind, site, box_id, camera, list_name, subject_id, ts, received_at, sequence, state, requested,
     note, acted_by, acted_at, payload, has_snapshot, subject_name, category, priority) = row  # fmt: skip
    body = json.loads(payload)
    location = body.get("location") or {}
    return {
        "event_id": event_id, "kind": kind, "panic": kind in PANIC_KINDS, "site": site, "box_id": box_id,
        "camera": camera, "list": list_name, "subject_id": subject_id, "subject_name": subject_name,
        "subject_category": category, "subject_priority": priority, "ts": ts, "received_at": received_at,
        "sequence": sequence, "state": state, "requested_state": requested, "note": note, "acted_by": acted_by,
        "acted_at": acted_at, "has_snapshot": bool(has_snapshot), "score": body.get("score"),
        "list_version": body.get("list_version"), "gate": location.get("gate"), "site_name": location.get("site_name"),
        "lat": location.get("lat"), "lon": location.get("lon"), "plate": body.get("plate"),
        "plate_read": body.get("plate_read"), "device_id": body.get("device_id"), "household": body.get("household"),
        "address": body.get("address"), "presses": body.get("presses"), "battery": body.get("battery"),
        "contact": body.get("contact"), "distance": body.get("distance"), "grid_cell": location.get("grid_cell"),
    }  # fmt: skip
