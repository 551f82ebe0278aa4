"""The box's record of the alerts it raised and where each stands: new → acked → closed.

Face snapshots are kept on disk beside it while an alert is open; they are deleted when the alert
is closed, or after the retention period, whichever comes first.

An alert is recorded here only once it is held in the outbox (`AlertLog.emit`), and marked
`confirmed_at` when the centre's receipt arrives: a record that is neither confirmed nor in the
outbox would be an alert lost, which `AlertLog.recover` checks for at every start.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.protocol.alert import Alert
from edge.protocol.errors import GateboxError
from edge.protocol.private import private_dir, write_private
from edge.protocol.sqlite import Migration, Schema, add_columns, open_database, transaction

TABLES = """
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
"""
SCHEMA = Schema(
    Migration("the alert records", TABLES),
    # Records an earlier version made read 0 ("unknown") rather than NULL ("not yet").
    Migration("receipts", add_columns("alerts", {"confirmed_at": "REAL DEFAULT 0"})),
)
ORDER = {"new": 0, "acked": 1, "closed": 2}
COLUMNS = "event_id, list_name, subject_id, camera, ts, state, note, by, confirmed_at IS NOT NULL, kind"


@dataclass(frozen=True)
class AlertRecord:
    event_id: str
    list_name: str
    subject_id: str
    camera: str
    ts: str
    state: str
    note: str | None
    by: str | None
    confirmed: bool  # the centre's receipt arrived (or the record predates tracking it)
    kind: str = "face_match"  # the alert's kind (face_match, elder_leaving, plate_match)


class AlertStates:
    def __init__(self, data_dir: Path) -> None:
        self.snapshots = data_dir / "snapshots"
        try:
            private_dir(self.snapshots)
        except OSError as e:
            raise GateboxError(f"cannot create {self.snapshots}: {e}") from None
        # FULL: a record is on disk before its alert is released to the centre, even across a power cut.
        self._db = open_database(data_dir / "alerts.sqlite3", SCHEMA, "the alert store", full_sync=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, alert: Alert) -> bool:
        """Record a new alert and keep its face snapshot; False (and nothing written) when already
        recorded, so that recording again at a start never brings back the snapshot of a closed alert."""
        if self.get(alert.event_id) is not None:
            return False
        # The snapshot first: a crash before the record leaves it to be written again with the record.
        self.save_snapshot(alert)
        self.record_event(alert.event_id, alert.kind, alert.list, alert.subject_id, alert.camera, alert.ts.isoformat())
        return True

    def save_snapshot(self, alert: Alert) -> None:
        write_private(self.snapshots / f"{alert.event_id}.jpg", base64.b64decode(alert.snapshot_jpeg_b64))

    def record_event(self, event_id: str, kind: str, list_name: str, subject_id: str, camera: str, ts: str) -> None:
        """Any event the centre can acknowledge (alerts, panics); a repeat of an event_id is ignored."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO alerts (event_id, kind, list_name, subject_id, camera, ts, state, note, by, "
                "created_at, updated_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, 'new', NULL, NULL, ?, ?, NULL)",
                (event_id, kind, list_name, subject_id, camera, ts, now, now),
            )

    def confirm(self, event_ids: Iterable[str]) -> None:
        """The centre's receipt for these alerts arrived."""
        now = time.time()
        with self._lock, transaction(self._db):
            self._db.executemany(
                "UPDATE alerts SET confirmed_at = ? WHERE event_id = ? AND confirmed_at IS NULL",
                [(now, e) for e in event_ids],
            )

    def unconfirmed_alerts(self) -> list[str]:
        """Alerts (not panics: those are confirmed per message, in the outbox) with no receipt yet."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id FROM alerts WHERE confirmed_at IS NULL AND kind != 'panic' ORDER BY created_at"
            ).fetchall()
        return [r[0] for r in rows]

    def set_state(self, event_id: str, state: str, note: str | None, by: str | None) -> bool:
        """Move an alert forward (never back); False when the alert is unknown or already further on."""
        with self._lock, transaction(self._db):  # read, then write: nothing else writes in between
            row = self._db.execute("SELECT state FROM alerts WHERE event_id = ?", (event_id,)).fetchone()
            if row is None or ORDER[row[0]] >= ORDER[state]:
                return False
            self._db.execute(
                "UPDATE alerts SET state = ?, note = COALESCE(?, note), by = COALESCE(?, by), updated_at = ? "
                "WHERE event_id = ?",
                (state, note, by, time.time(), event_id),
            )
        if state == "closed":
            (self.snapshots / f"{event_id}.jpg").unlink(missing_ok=True)
        return True

    def get(self, event_id: str) -> AlertRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM alerts WHERE event_id = ?", (event_id,)).fetchone()
        return _record(row) if row else None

    def all(self) -> list[AlertRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM alerts ORDER BY created_at").fetchall()
        return [_record(r) for r in rows]

    def purge_snapshots(self, retention_s: float) -> int:
        """Delete snapshots older than the retention period; returns how many went. Half-written ones
        a crash left behind go too."""
        now = time.time()
        for partial in self.snapshots.glob(".*.tmp"):
            if partial.stat().st_mtime < now - 60:
                partial.unlink(missing_ok=True)
        removed = 0
        for path in self.snapshots.glob("*.jpg"):
            if path.stat().st_mtime < now - retention_s:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _record(row: tuple[Any, ...]) -> AlertRecord:
    """An AlertRecord from a row of `COLUMNS`."""
    event_id, list_name, subject_id, camera, ts, state, note, by, confirmed, kind = row
    return AlertRecord(
        event_id, list_name, subject_id, camera, ts, state, note, by, confirmed=bool(confirmed), kind=kind
    )
