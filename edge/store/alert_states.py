"""The box's record of the alerts it raised and where each stands: new → acked → closed.

Face snapshots are kept on disk beside it while an alert is open; they are deleted when the alert
is closed, or after the retention period, whichever comes first.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.alerts import Alert
from edge.errors import GateboxError
from edge.store.sqlite import open_database

SCHEMA = """
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
    updated_at  REAL NOT NULL
);
"""
ORDER = {"new": 0, "acked": 1, "closed": 2}


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


class AlertStates:
    def __init__(self, data_dir: Path) -> None:
        self.snapshots = data_dir / "snapshots"
        try:
            self.snapshots.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GateboxError(f"cannot create {self.snapshots}: {e}") from None
        self._db = open_database(data_dir / "alerts.sqlite3", SCHEMA, "the alert store")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, alert: Alert) -> None:
        (self.snapshots / f"{alert.event_id}.jpg").write_bytes(base64.b64decode(alert.snapshot_jpeg_b64))
        self.record_event(alert.event_id, alert.kind, alert.list, alert.subject_id, alert.camera, alert.ts.isoformat())

    def record_event(self, event_id: str, kind: str, list_name: str, subject_id: str, camera: str, ts: str) -> None:
        """Any event the centre can acknowledge (alerts, panics); a repeat of an event_id is ignored."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, 'new', NULL, NULL, ?, ?)",
                (event_id, kind, list_name, subject_id, camera, ts, now, now),
            )

    def set_state(self, event_id: str, state: str, note: str | None, by: str | None) -> bool:
        """Move an alert forward (never back); False when the alert is unknown or already further on."""
        with self._lock:
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
            row = self._db.execute(
                "SELECT event_id, list_name, subject_id, camera, ts, state, note, by FROM alerts WHERE event_id = ?",
                (event_id,),
            ).fetchone()
        return AlertRecord(*row) if row else None

    def all(self) -> list[AlertRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, list_name, subject_id, camera, ts, state, note, by FROM alerts ORDER BY created_at"
            ).fetchall()
        return [AlertRecord(*r) for r in rows]

    def purge_snapshots(self, retention_s: float) -> int:
        """Delete snapshots older than the retention period; returns how many went."""
        cutoff = time.time() - retention_s
        removed = 0
        for path in self.snapshots.glob("*.jpg"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
