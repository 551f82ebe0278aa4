"""What surrounds the pipelines of one box: alert records, the outbox and the link to the centre.

`replay` and `run` both hand their alerts to `BoxServices.emit`, so a recorded file and a live
camera take the same path to the centre.

Nothing raised is lost: an alert is durable in the outbox before anything else records it, and each
start completes whatever a crash interrupted (see `emit` and `_recover`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from edge.comms.link import CentreLink
from edge.comms.outbox import Outbox, OutgoingMessage, Priority
from edge.config import GateboxConfig
from edge.lists.sync import ListSync
from edge.protocol import topics
from edge.protocol.alert import Alert
from edge.protocol.messages import AlertState, Command, ListAck
from edge.protocol.signing import load_public_key
from edge.recognition.embedder import configured_embedder_id
from edge.store.alert_states import AlertStates
from edge.store.events import EventsFile
from edge.store.lists import ListStore

log = logging.getLogger(__name__)

URGENT_LISTS = frozenset({"missing_elders", "at_risk_elders"})


class BoxServices:
    def __init__(
        self, config: GateboxConfig, data_dir: Path, connect: bool = True, journal: Path | None = None,
        on_gallery_change: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """`journal`: the box's events file (`gatebox run`: DATA_DIR/events.jsonl), faces left out.
        `on_gallery_change`: runs after every list update is stored; given here, it is in place before
        the link starts, so not even a list applied from the first retained message is missed."""
        self._config = config
        self.states = AlertStates(data_dir)
        self.purge_snapshots()
        self.outbox = Outbox(data_dir / "outbox.sqlite3", int(config.link.outbox_budget_mb * 1024 * 1024),
                             on_confirmed=self.states.confirm)  # fmt: skip
        self.journal = EventsFile(journal, faces=False) if journal else None
        self._emit_lock = threading.Lock()
        self._recover()  # before the link starts: nothing half-raised may leave
        self.link: CentreLink | None = None
        self.list_sync: ListSync | None = None
        self._gallery_listeners: list[Callable[[], None]] = [on_gallery_change] if on_gallery_change else []
        self._data_dir = data_dir
        if connect:
            key_path = config.link.centre_public_key
            if key_path is None:
                log.warning("link.centre_public_key is not set: commands and lists from the centre will be refused")
            key = load_public_key(key_path) if key_path else None
            self.list_sync = ListSync(config.broker.topic_prefix, key, data_dir, config.lists, self.on_list_applied,
                                      config.link.list_timeout_s, int(config.link.max_list_mb * 1024 * 1024),
                                      config.link.max_inbound_bytes,
                                      embedder_id=configured_embedder_id(config.recognition))  # fmt: skip
            self.link = CentreLink(
                config.broker, config.box, config.link, self.outbox, key, self.on_command, self.list_sync
            )
            self.link.start()
            if not self.link.wait_connected(timeout=5.0):
                log.warning(
                    "MQTT broker %s:%d not reachable yet; alerts wait in the outbox until it is",
                    config.broker.host, config.broker.port,
                )  # fmt: skip
            pending = self.outbox.stats().depth
            if pending:
                log.info("outbox holds %d message(s) from before; sending them first", pending)

    def emit(self, alert: Alert) -> None:
        """Raise an alert: durable, recorded and on its way to the centre when this returns.

        The writes, in this order; a crash between any two is completed at the next start (`_recover`):
        1. the outbox, *held* (fsynced: from here on the alert cannot be lost; not sent yet);
        2. the face snapshot, then the alert record (`gatebox alerts`);
        3. the journal line (`events.jsonl`), fsynced;
        4. release: the link may send it. Until then the centre cannot have it, so it can never
           confirm an alert the box has not recorded, nor hold one the journal lacks.
        """
        topic = topics.box_topic(self._config.broker, self._config.box, topics.ALERT)
        # A missing elder seen, or an at-risk elder leaving, goes before watchlist alerts.
        priority = Priority.URGENT_ALERT if alert.list in URGENT_LISTS else Priority.ALERT
        message = OutgoingMessage(alert.event_id, "alert", priority, topic, alert.to_json().encode(), True)
        with self._emit_lock:
            self.outbox.put(message, held=True)
            try:
                self._record(alert)
            finally:  # recorded or not (a full disk raises here), the alert must still reach the centre
                self.outbox.release(alert.event_id)
        if self.link:
            self.link.wake()

    def _record(self, alert: Alert) -> None:
        """Steps 2 and 3 of `emit`; each skipped when already done."""
        self.states.record(alert)
        if self.journal is not None and alert.event_id not in self.journal:
            self.journal(alert)

    def _recover(self) -> None:
        """Complete every alert a crash left half raised: held in the outbox (or, after a power cut,
        queued without its record) gets its record and journal line, then is released. The outbox
        holds the whole alert until the centre confirms it, so nothing else needs re-queueing."""
        queued = self.outbox.queued("alert")
        completed = 0
        for event_id, payload, held in queued:
            if not held and self.states.get(event_id) is not None:
                continue
            try:
                alert = Alert.model_validate_json(payload)
            except ValueError:  # not written by this version: send it as it is
                log.error("outbox: alert %s is not a valid alert; sending it unrecorded", event_id)
            else:
                self._record(alert)
            self.outbox.release(event_id)
            completed += 1
        if completed:
            log.warning("completed %d alert(s) a crash interrupted while they were raised", completed)
        # Every alert recorded is confirmed by the centre or still queued; anything else is a bug.
        lost = set(self.states.unconfirmed_alerts()) - {event_id for event_id, _, _ in queued}
        if lost:
            log.error("%d alert(s) recorded but neither confirmed by the centre nor queued: %s",
                      len(lost), ", ".join(sorted(lost)[:10]))  # fmt: skip

    def purge_snapshots(self) -> None:
        """Face snapshots past `alerts.snapshot_retention_days` go (at start, and from time to time)."""
        removed = self.states.purge_snapshots(self._config.alerts.snapshot_retention_days * 86400)
        if removed:
            log.info("deleted %d face snapshot(s) past their retention", removed)

    def on_command(self, command: Command) -> None:
        if command.command == "ack_alert":
            if not self.states.set_state(command.event_id, command.state, command.note, command.by):
                log.info("ack for %s ignored: unknown alert, or already %s", command.event_id, command.state)
                return
            log.info("alert %s is now %s", command.event_id, command.state)
            state = AlertState(event_id=command.event_id, state=command.state, note=command.note, by=command.by,
                               ts=time.time())  # fmt: skip
            self.report(topics.ALERT_STATE, "alert_state", state.model_dump_json(by_alias=True))

    def passages(self, records: list) -> None:  # list[PassageRecord]
        """Vehicles read at the gate, for the centre's access log (low priority)."""
        for record in records:
            passage = record.message(self._config.box.site, self._config.box.box_id)
            self.report(topics.PASSAGE, "passage", passage.model_dump_json(by_alias=True))

    def report(self, leaf: str, kind: str, body: dict[str, object] | str) -> None:
        """Queue a low-priority message nobody must confirm (it leaves on PUBACK)."""
        payload = body if isinstance(body, str) else json.dumps(body, default=str)
        topic = topics.box_topic(self._config.broker, self._config.box, leaf)
        self.outbox.put(
            OutgoingMessage(f"{kind}-{uuid.uuid4().hex}", kind, Priority.OTHER, topic, payload.encode(), False)
        )
        if self.link:
            self.link.wake()

    def drain(self, timeout_s: float) -> None:
        """Wait (up to `timeout_s`) for the centre to confirm everything queued."""
        if self.link and not self.link.wait_drained(timeout_s):
            log.warning(
                "%d message(s) not yet confirmed by the centre; kept in the outbox for the next start",
                self.outbox.stats().depth,
            )

    def on_list_applied(self, list_name: str, version: int, entries: int) -> None:
        for listener in self._gallery_listeners:
            listener()
        ack = ListAck(list=list_name, version=version, entries=entries, ts=time.time())
        self.report(topics.LIST_ACK, "list_ack", ack.model_dump_json(by_alias=True))

    def list_report(self) -> dict[str, object]:
        """Lists for the heartbeat: version and subjects per list, and refused updates."""
        store = ListStore(self._data_dir)
        try:
            versions = store.versions()
            subjects = Counter(s.list_name for s in store.subjects())
        finally:
            store.close()
        report: dict[str, object] = {
            name: {"version": versions.get(name), "subjects": subjects.get(name, 0)} for name in self._config.lists
        }
        if self.list_sync and self.list_sync.rejected:
            report["rejected"] = dict(self.list_sync.rejected)
        return report

    def close(self) -> None:
        if self.link:
            self.link.close()
        self.outbox.close()
        self.states.close()
        if self.journal is not None:
            self.journal.close()
