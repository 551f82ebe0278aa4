"""Several console workers behind one address (README, "Scaling out"): what they share.

- The boxes' messages come through an MQTT shared subscription (`$share/<group>/<topic>`): the broker
  hands each to one worker of the group, which stores and confirms it. The list manifests stay an
  ordinary subscription on every worker: they are retained, and a broker sends no retained message to
  a shared subscription, so a worker starting later would never learn the versions in force.
- The database is one PostgreSQL, and what one worker stores the others' pages must hear of: each
  change a worker marks for its own pages it also NOTIFYs on `gatebox_changes`; every worker LISTENs
  and marks what the others announced for its own pages (its own announcements it has marked already).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Protocol

from centre.database import Listener
from centre.store import CentreStore

log = logging.getLogger(__name__)

CHANNEL = "gatebox_changes"
# What a page refetches on, and so what another worker's change may name (`status` is each worker's own:
# its broker link and receiver).
SHARED_KINDS = frozenset({"events", "boxes", "lists", "passages"})


def shared_topic(topic: str, group: str | None) -> str:
    """`topic` as a member of the shared-subscription `group` subscribes to it (unchanged without one)."""
    return f"$share/{group}/{topic}" if group else topic


class Marks(Protocol):
    def mark(self, kind: str, urgent: bool = False, **flags: bool) -> None: ...


class SharedChanges:
    """Passes change notices between the workers on one PostgreSQL database."""

    def __init__(self, store: CentreStore, changes: Marks) -> None:
        self._store = store
        self._changes = changes
        self._origin = uuid.uuid4().hex  # this worker: its own notices come back to it, and are skipped
        self._listener = Listener(str(store.location), CHANNEL, self._deliver)

    def wait_ready(self, timeout_s: float) -> bool:
        return self._listener.wait_ready(timeout_s)

    def announce(self, kind: str, urgent: bool = False, **flags: bool) -> None:
        """Tell the other workers (best effort: a notice lost is a page refreshed a little later)."""
        if kind not in SHARED_KINDS:
            return
        payload = json.dumps({"origin": self._origin, "kind": kind, "urgent": urgent, "flags": flags})
        try:
            self._store.notify_workers(CHANNEL, payload)
        except Exception as e:
            log.warning("could not tell the other console workers of a change (%s): %s", kind, e)

    def close(self) -> None:
        self._listener.close()

    def _deliver(self, payload: str) -> None:
        try:
            notice = json.loads(payload)
            kind, urgent, flags = notice["kind"], notice["urgent"], notice["flags"]
            if notice["origin"] == self._origin:
                return
            if kind not in SHARED_KINDS or not isinstance(urgent, bool) or not isinstance(flags, dict):
                raise ValueError(kind)
            self._changes.mark(kind, urgent, **{str(k): bool(v) for k, v in flags.items()})
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a change notice on %s: %.200s", CHANNEL, payload)
