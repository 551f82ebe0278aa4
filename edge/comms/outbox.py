"""The durable outbox: every message for the centre is on disk before the pipeline moves on.

A broker's PUBACK only means the broker has the message (a broker killed with SIGKILL loses what
it acknowledged but had not saved), so an alert or a panic leaves the outbox only when the centre
sends a receipt for its `event_id`; until then it is sent again every `resend_after_s`, and on
every reconnect. Messages nobody has to confirm (state changes, reports) leave on PUBACK.

An alert is put here *held* before anything else on the box records it, and released (free to
leave) only once the box has recorded it (alert record, snapshot, events journal): the centre can
never confirm an alert the box has not recorded, and a crash half way leaves a held row that the
next start completes (`AlertLog.recover`). Whoever owns the alert records hears of each confirmed
alert (`on_confirmed`) before it leaves the outbox, so no confirmed alert is ever queued again.

Order on the wire: priority (panic > alert > other), then age. Bounded: past the disk budget the
oldest lowest-priority messages are dropped first and counted; alerts and panics are never
dropped (the outbox grows past its budget instead, with a warning).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from edge.protocol.errors import GateboxError
from edge.protocol.sqlite import Migration, Schema, add_columns, connect, open_database, transaction

log = logging.getLogger(__name__)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


BOOT_ID = _boot_id()


class Priority(IntEnum):
    OTHER = 10
    ALERT = 20  # watchlist
    URGENT_ALERT = 25  # a missing elder seen, an at-risk elder leaving
    PANIC = 30


TABLES = """
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
"""
# Versions before schema versions added columns in place: an unversioned database may lack them.
SCHEMA = Schema(
    Migration("the outbox", TABLES),
    Migration("a monotonic age", add_columns("outbox", {"created_mono": "REAL", "boot_id": "TEXT"})),
    Migration("held messages", add_columns("outbox", {"held": "INTEGER NOT NULL DEFAULT 0"})),
)


@dataclass(frozen=True)
class OutgoingMessage:
    event_id: str
    kind: str  # alert, panic, alert_state, ...
    priority: Priority
    topic: str
    payload: bytes
    needs_receipt: bool  # True: stays until the centre confirms it; False: leaves on PUBACK


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_unconfirmed_age_s: float | None
    dropped: dict[str, int]


class Outbox:
    """Thread-safe; every call is short (one SQLite transaction), none touches the network."""

    def __init__(self, path: Path, budget_bytes: int, on_confirmed: Callable[[list[str]], None] | None = None) -> None:
        """`on_confirmed(event_ids)`: the centre confirmed these alerts; called before they leave the outbox."""
        # FULL: a message reported stored survives a power cut, not only a process crash.
        self._db = open_database(path, SCHEMA, "the outbox", full_sync=True)
        self._on_confirmed = on_confirmed
        try:
            # Bookkeeping (sent, delivered) goes through a second connection without the fsync: losing
            # such a write to a power cut only means sending a message again, which the centre de-duplicates.
            self._bookkeeping = connect(path)
            self._bookkeeping.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise GateboxError(f"cannot open the outbox {path}: {e}") from None
        self._lock = threading.Lock()
        self._budget = budget_bytes
        self._warned_over_budget = False

    def close(self) -> None:
        with self._lock:
            self._bookkeeping.close()
            self._db.close()

    def put(self, message: OutgoingMessage, held: bool = False) -> None:
        """Store durably (idempotent on event_id), then trim to the budget. `held`: not sent before
        `release`, so the caller can record the message elsewhere first."""
        with self._lock, transaction(self._db):
            self._db.execute(
                "INSERT OR IGNORE INTO outbox (event_id, kind, priority, topic, payload, needs_receipt, "
                "created_at, created_mono, boot_id, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message.event_id, message.kind, int(message.priority), message.topic, message.payload,
                 int(message.needs_receipt), time.time(), time.monotonic(), BOOT_ID, int(held)),
            )  # fmt: skip
            self._trim()

    def release(self, event_id: str) -> None:
        """A held message may leave now. Not fsynced: a release lost to a power cut leaves the message
        held, and the next start releases it again."""
        with self._lock:
            self._bookkeeping.execute("UPDATE outbox SET held = 0 WHERE event_id = ?", (event_id,))

    def queued(self, kind: str) -> list[tuple[str, bytes, bool]]:
        """Every message of `kind` still here, oldest first: (event_id, payload, held)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, payload, held FROM outbox WHERE kind = ? ORDER BY seq", (kind,)
            ).fetchall()
        return [(e, bytes(p), bool(h)) for e, p, h in rows]

    def replace_payloads(self, payloads: dict[str, bytes]) -> int:
        """Rewrite queued messages in place (event id -> new payload), e.g. to drop an expired face view;
        the queue order and sent state stay. Returns how many were still queued."""
        with self._lock, transaction(self._db):
            update = "UPDATE outbox SET payload = ? WHERE event_id = ?"
            return sum(self._db.execute(update, (payload, event_id)).rowcount for event_id, payload in payloads.items())

    def _trim(self) -> None:
        (total,) = self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()
        while total > self._budget:
            victim = self._db.execute(
                "SELECT seq, kind, LENGTH(payload) FROM outbox WHERE priority < ? ORDER BY priority, seq LIMIT 1",
                (int(Priority.ALERT),),
            ).fetchone()
            if victim is None:
                if not self._warned_over_budget:
                    log.warning("outbox over its budget with alerts/panics only: keeping them all")
                    self._warned_over_budget = True
                self._count("over_budget")
                return
            seq, kind, size = victim
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self._count(f"dropped.{kind}")
            log.warning("outbox over budget: dropped the oldest %s message", kind)
            total -= size
        self._warned_over_budget = False

    def _count(self, name: str, by: int = 1) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + ?",
            (name, by, by),
        )

    def due(self, limit: int) -> list[tuple[str, str, bytes, bool, float]]:
        """Up to `limit` messages not yet sent, highest priority then oldest first:
        (event_id, topic, payload, needs_receipt, age in seconds)."""
        now_wall, now_mono = time.time(), time.monotonic()
        with self._lock:
            rows = self._bookkeeping.execute(
                "SELECT event_id, topic, payload, needs_receipt, created_at, created_mono, boot_id FROM outbox "
                "WHERE sent_at IS NULL AND held = 0 ORDER BY priority DESC, seq LIMIT ?",
                (limit,),
            ).fetchall()
        # Age from the monotonic clock when queued in this boot: immune to the wall clock being set.
        return [
            (e, t, bytes(p), bool(r), now_mono - mono if boot == BOOT_ID and mono is not None else now_wall - wall)
            for e, t, p, r, wall, mono, boot in rows
        ]

    def mark_sent(self, event_ids: Iterable[str], now: float) -> None:
        with self._lock, transaction(self._bookkeeping):
            self._bookkeeping.executemany(
                "UPDATE outbox SET sent_at = ?, attempts = attempts + 1 WHERE event_id = ?",
                [(now, e) for e in event_ids],
            )

    def remove(self, event_ids: Iterable[str]) -> int:
        """Delivered (receipt, or PUBACK for messages that need none): gone for good. Alerts among
        them go to `on_confirmed` first: a crash in between leaves an alert both confirmed and queued,
        which is sent once more (the centre de-duplicates it), never one lost from both."""
        event_ids = list(event_ids)
        if self._on_confirmed is not None:
            with self._lock:
                alerts = [
                    e for e in event_ids
                    if self._bookkeeping.execute(
                        "SELECT 1 FROM outbox WHERE event_id = ? AND kind = 'alert'", (e,)
                    ).fetchone()
                ]  # fmt: skip
            if alerts:
                self._on_confirmed(alerts)
        with self._lock, transaction(self._bookkeeping):
            cursor = self._bookkeeping.executemany("DELETE FROM outbox WHERE event_id = ?", [(e,) for e in event_ids])
            return cursor.rowcount

    def requeue_unconfirmed(self, now: float, resend_after_s: float, resend_max_s: float | None = None) -> int:
        """Still unconfirmed after its wait: due again. The wait doubles with each send, from `resend_after_s`
        up to `resend_max_s` (default: no growth). Why: behind a district broker the box's own link stays up
        through a cut to the centre, and every copy it sends is queued at the district and delivered later;
        resending at a fixed pace multiplies the backlog each cycle (measured: 154,379 resends for 30,000
        events in benchmarks/city_bench.py), and the flood then delays everyone's receipts past the wait."""
        cap = resend_after_s if resend_max_s is None else max(resend_max_s, resend_after_s)
        with self._lock:
            return self._bookkeeping.execute(
                "UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL "
                "AND sent_at < ? - MIN(? * (1 << MIN(MAX(attempts - 1, 0), 20)), ?)",
                (now, resend_after_s, cap),
            ).rowcount

    def resend_all(self) -> None:
        """After a reconnect nothing unconfirmed is trusted to have arrived: send it all again, in order."""
        with self._lock:
            self._bookkeeping.execute("UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL")

    def contains(self, event_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM outbox WHERE event_id = ?", (event_id,)).fetchone() is not None

    def stats(self) -> OutboxStats:
        with self._lock:
            depth, size, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), MIN(created_at) FROM outbox"
            ).fetchone()
            dropped = {
                name.removeprefix("dropped."): value
                for name, value in self._db.execute("SELECT name, value FROM counters WHERE name LIKE 'dropped.%'")
            }
        return OutboxStats(depth, size, None if oldest is None else max(0.0, time.time() - oldest), dropped)
