"""The history an officer hands over, as CSV: each event found, how it was disposed (the report →
dispose → close record: acknowledged and closed, by whom, when, with what note) and every action
in order. Text from boxes and operators is written so a spreadsheet never runs it as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from itertools import chain

COLUMNS = (
    "event_id", "kind", "site", "box_id", "gate", "camera", "list", "subject_id", "name", "category", "priority",
    "plate", "household", "address", "contact", "device_id", "strength", "distance", "seen_at", "received_at",
    "state", "acked_at", "acked_by", "ack_note", "closed_at", "closed_by", "close_note", "actions",
)  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _utc(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _cell(value: object) -> str:
    """A value as a CSV cell; text that a spreadsheet would read as a formula is quoted with `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def row(event: dict[str, object]) -> list[str]:
    actions = event.get("actions")
    done = [a for a in actions if isinstance(a, dict)] if isinstance(actions, list) else []
    # The last ack and the last close (an ack may be sent again when a box was offline).
    acked = next((a for a in reversed(done) if a.get("state") == "acked"), {})
    closed = next((a for a in reversed(done) if a.get("state") == "closed"), {})
    strength = event.get("strength")
    values: dict[str, object] = {
        **{column: event.get(column) for column in COLUMNS},
        "strength": strength.get("label") if isinstance(strength, dict) else None,
        "seen_at": event.get("ts"),
        "received_at": _utc(event.get("received_at")),
        "acked_at": _utc(acked.get("at")), "acked_by": acked.get("by"), "ack_note": acked.get("note"),
        "closed_at": _utc(closed.get("at")), "closed_by": closed.get("by"), "close_note": closed.get("note"),
        "actions": " | ".join(
            f"{_utc(a.get('at'))} {a.get('state')} by {a.get('by')}" + (f": {a.get('note')}" if a.get("note") else "")
            for a in done
        ),
    }  # fmt: skip
    return [_cell(values[column]) for column in COLUMNS]


def csv_lines(events: Iterable[dict[str, object]]) -> Iterator[str]:
    """The header, then one line per event (streamed: a year of events is never held at once)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line in chain([list(COLUMNS)], (row(event) for event in events)):
        writer.writerow(line)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
