"""The centre's passage log and hourly counts: every person and vehicle the boxes saw pass.

Kept in a database of its own beside the centre's store (`<store>-passages.sqlite3`), so its schema
grows without touching the events'; on PostgreSQL in the centre's database, tables of its own with their
own schema version (`centre.database`). A passage is stored once per box and passage id (resent
copies are ignored; passages from boxes before ids are keyed by what they say), and each new one
adds one to its hour's total per site, box, camera, direction and subject. Face views are kept only
until the box's `snapshot_expires_at`.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from centre.database import DatabaseLocation, PostgresMigration, is_postgres, open_store_database
from edge.protocol.messages import Passage
from edge.protocol.sqlite import Migration, Schema

HOUR = 3600
PASSAGE_COLUMNS = "site, box_id, camera, ts, subject, direction, plate, colour, has_snapshot, received_at"

SCHEMA = Schema(
    Migration(
        "passages and hourly totals",
        """
        CREATE TABLE passages (
            site TEXT NOT NULL, box_id TEXT NOT NULL, passage_key TEXT NOT NULL,
            camera TEXT NOT NULL, ts REAL NOT NULL, subject TEXT NOT NULL, direction TEXT,
            plate TEXT, colour TEXT, snapshot BLOB, snapshot_expires_at REAL,
            has_snapshot INTEGER NOT NULL DEFAULT 0, received_at REAL NOT NULL,
            PRIMARY KEY (site, box_id, passage_key)
        );
        CREATE INDEX passages_ts ON passages (ts DESC);
        CREATE INDEX passages_plate ON passages (plate);
        CREATE TABLE hourly (
            site TEXT NOT NULL, box_id TEXT NOT NULL, camera TEXT NOT NULL, hour REAL NOT NULL,
            subject TEXT NOT NULL, direction TEXT NOT NULL, passages INTEGER NOT NULL,
            PRIMARY KEY (site, box_id, camera, hour, subject, direction)
        );
        """,
    )
)


# The same tables on PostgreSQL, in the centre's database (BIGINT, DOUBLE PRECISION, BYTEA for SQLite's
# INTEGER, REAL, BLOB; the columns in the same order, as inserts give them by position).
POSTGRES_SCHEMA = (
    PostgresMigration(
        "passages and hourly totals",
        """
        CREATE TABLE passages (
            site TEXT NOT NULL, box_id TEXT NOT NULL, passage_key TEXT NOT NULL,
            camera TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, subject TEXT NOT NULL, direction TEXT,
            plate TEXT, colour TEXT, snapshot BYTEA, snapshot_expires_at DOUBLE PRECISION,
            has_snapshot BIGINT NOT NULL DEFAULT 0, received_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (site, box_id, passage_key)
        );
        CREATE INDEX passages_ts ON passages (ts DESC);
        CREATE INDEX passages_plate ON passages (plate);
        CREATE TABLE hourly (
            site TEXT NOT NULL, box_id TEXT NOT NULL, camera TEXT NOT NULL, hour DOUBLE PRECISION NOT NULL,
            subject TEXT NOT NULL, direction TEXT NOT NULL, passages BIGINT NOT NULL,
            PRIMARY KEY (site, box_id, camera, hour, subject, direction)
        )
        """,
    ),
)


def passages_path(store: Path) -> Path:
    """Where the passage log of the centre store at `store` lives."""
    return store.with_name(f"{store.stem}-passages.sqlite3")


def passages_location(store: DatabaseLocation) -> DatabaseLocation:
    """The passage log of the centre store at `store`: a file beside it, or the same PostgreSQL database."""
    return store if is_postgres(store) else passages_path(Path(store))


@dataclass(frozen=True)
class PassageFilter:
    since: float | None = None
    until: float | None = None
    site: str | None = None
    box_id: str | None = None
    camera: str | None = None  # the gate's camera
    direction: str | None = None
    subject: str | None = None
    plate: str | None = None  # a prefix of the plate
    limit: int = 100


class PassageLog:
    def __init__(self, location: DatabaseLocation) -> None:
        self._db = open_store_database(location, "the centre's passage log", SCHEMA, "passages", POSTGRES_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, site: str, box_id: str, passage: Passage, now: float | None = None) -> bool:
        """Store one passage of `site`/`box_id`; True when it is new (then its hour is counted)."""
        key = passage.passage_id or f"{passage.camera}:{passage.ts}:{passage.subject}:{passage.plate}"
        snapshot = base64.b64decode(passage.snapshot_jpeg_b64) if passage.snapshot_jpeg_b64 else None
        direction = passage.direction or "unknown"
        with self._lock, self._db.transaction():
            new = self._db.execute(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (site, box_id, key, passage.camera, passage.ts, passage.subject, passage.direction, passage.plate,
                 passage.colour, snapshot, passage.snapshot_expires_at, int(snapshot is not None),
                 time.time() if now is None else now),
            ).rowcount == 1  # fmt: skip
            if new:
                self._db.execute(
                    "INSERT INTO hourly VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (site, box_id, camera, hour, subject, "
                    "direction) DO UPDATE SET passages = hourly.passages + 1",
                    (site, box_id, passage.camera, passage.ts // HOUR * HOUR, passage.subject, direction),
                )
        return new

    def forget_snapshots(self, now: float) -> int:
        """Face views past their retention go; the passages stay."""
        with self._lock, self._db.transaction():
            return self._db.execute(
                "UPDATE passages SET snapshot = NULL, has_snapshot = 0 WHERE snapshot IS NOT NULL "
                "AND snapshot_expires_at <= ?",
                (now,),
            ).rowcount

    def search(self, where: PassageFilter) -> list[dict[str, object]]:
        """The passage log, newest first."""
        clauses, args = _clauses(where, time_column="ts")
        if where.plate:
            clauses.append(f"plate {self._db.dialect.like} ? ESCAPE '\\'")
            args.append(where.plate.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        sql = f"SELECT {PASSAGE_COLUMNS} FROM passages {_where(clauses)} ORDER BY ts DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, max(1, min(where.limit, 1000)))).fetchall()
        names = [c.strip() for c in PASSAGE_COLUMNS.split(",")]
        return [dict(zip(names, row, strict=True)) | {"has_snapshot": bool(row[8])} for row in rows]

    def hourly(self, where: PassageFilter) -> list[dict[str, object]]:
        """Totals per hour, site, box, camera, subject and direction (oldest hour first)."""
        clauses, args = _clauses(where, time_column="hour")
        sql = (f"SELECT hour, site, box_id, camera, subject, direction, passages FROM hourly {_where(clauses)} "
               "ORDER BY hour, site, box_id, camera, subject, direction")  # fmt: skip
        with self._lock:
            rows = self._db.execute(sql, tuple(args)).fetchall()
        names = ("hour", "site", "box_id", "camera", "subject", "direction", "passages")
        return [dict(zip(names, row, strict=True)) for row in rows]


def _clauses(where: PassageFilter, time_column: str) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    args: list[object] = []
    if where.since is not None:
        clauses.append(f"{time_column} >= ?")
        args.append(where.since // HOUR * HOUR if time_column == "hour" else where.since)
    if where.until is not None:
        clauses.append(f"{time_column} < ?")
        args.append(where.until)
    for column in ("site", "box_id", "camera", "direction", "subject"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return clauses, args


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


KINDS = ("person_in", "person_out", "vehicle_in", "vehicle_out")


def counts(log: PassageLog, now: float, where: PassageFilter) -> dict[str, object]:
    """What the console shows: today's totals (since local midnight), overall and per gate (site, box,
    camera; every gate with passages today or in the last 24 h), and the last 24 h by hour, per subject
    and direction."""
    local = time.localtime(now)
    midnight = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
    today: dict[str, int] = {}
    gates: dict[tuple[object, object, object], dict[str, int]] = {}
    for row in log.hourly(PassageFilter(since=midnight, site=where.site, box_id=where.box_id, camera=where.camera)):
        key = f"{row['subject']}_{row['direction']}"
        today[key] = today.get(key, 0) + _int(row["passages"])
        gate = gates.setdefault((row["site"], row["box_id"], row["camera"]), {})
        gate[key] = gate.get(key, 0) + _int(row["passages"])
    first_hour = now // HOUR * HOUR - 23 * HOUR
    hours: list[dict[str, float]] = [{"hour": first_hour + i * HOUR, **dict.fromkeys(KINDS, 0)} for i in range(24)]
    for row in log.hourly(PassageFilter(since=first_hour, site=where.site, box_id=where.box_id, camera=where.camera)):
        index = int((_float(row["hour"]) - first_hour) // HOUR)
        key = f"{row['subject']}_{row['direction']}"
        if 0 <= index < 24 and key in hours[index]:
            hours[index][key] += _int(row["passages"])
        gates.setdefault((row["site"], row["box_id"], row["camera"]), {})  # seen in the last 24 h: listed, even at 0
    per_gate = [{"site": site, "box_id": box, "camera": camera, "today": totals}
                for (site, box, camera), totals in sorted(gates.items(), key=str)]  # fmt: skip
    return {"today": today, "gates": per_gate, "hours": hours}


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _float(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)
