"""The events file: one JSON line per alert, appended and fsynced (a regular file; a device or a pipe,
such as `--events /dev/null`, just takes the lines).

Two kinds. The box's own journal, `DATA_DIR/events.jsonl` (`gatebox run`), never holds a face: each
line is the alert without `snapshot_jpeg_b64`, naming instead its `snapshot_file` (relative to
DATA_DIR), which goes when the alert is closed or past `alerts.snapshot_retention_days`. Lines an
earlier version wrote with the face inline are stripped when the journal is opened. A replay's
`--events FILE` is a tester's export of whole alerts, faces included, exactly as published.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from edge.protocol.alert import Alert
from edge.protocol.errors import GateboxError
from edge.protocol.private import open_private, private_dir, write_private

FACE_FIELD = "snapshot_jpeg_b64"


def journal_line(alert: dict[str, object]) -> dict[str, object]:
    """An alert as the journal keeps it: its snapshot by name, not inline."""
    line = {k: v for k, v in alert.items() if k != FACE_FIELD}
    line["snapshot_file"] = f"snapshots/{alert['event_id']}.jpg"
    return line


class EventsFile:
    """Appends each alert as one JSON line and fsyncs it: the record survives a power cut.
    `faces=False` (the journal): lines without the face; the file is repaired when opened (a line a
    crash cut short is dropped, inline faces are stripped) and knows which alerts it holds."""

    def __init__(self, path: Path, faces: bool = True) -> None:
        self.path = path
        self._faces = faces
        self._event_ids: set[str] = set()
        try:
            private_dir(path.parent)
            if not faces:
                self._repair()
            self._fd = open_private(path, os.O_WRONLY | os.O_APPEND)
            # Only a regular file can be fsynced (and needs to be): a tester's `--events /dev/null` or a
            # pipe into another program takes the lines as they are written.
            self._sync = stat.S_ISREG(os.fstat(self._fd).st_mode)
        except OSError as e:
            raise GateboxError(f"cannot write events file {path}: {e.strerror or e}") from None

    def _repair(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        # A line a crash cut short: its alert is still held in the outbox, which writes it again at start.
        whole = data[: data.rfind(b"\n") + 1]
        lines, changed = [], len(whole) != len(data)
        for raw in whole.splitlines():
            try:
                body = json.loads(raw)
            except ValueError:
                lines.append(raw)  # not ours to judge: kept as it is
                continue
            if isinstance(body, dict):
                if FACE_FIELD in body and "event_id" in body:
                    raw, changed = _encode(journal_line(body)), True
                self._event_ids.add(str(body.get("event_id")))
            lines.append(raw)
        if changed:
            write_private(self.path, b"".join(line + b"\n" for line in lines))

    def __contains__(self, event_id: str) -> bool:
        """Whether the journal holds this alert (journal only)."""
        return event_id in self._event_ids

    def __call__(self, alert: Alert) -> None:
        text = alert.to_json().encode() if self._faces else _encode(journal_line(json.loads(alert.to_json())))
        line = memoryview(text + b"\n")
        while line:  # one write to an O_APPEND file (a short write only on a full disk or the like)
            line = line[os.write(self._fd, line) :]
        if self._sync:
            os.fsync(self._fd)
        self._event_ids.add(alert.event_id)

    def close(self) -> None:
        os.close(self._fd)


def _encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
