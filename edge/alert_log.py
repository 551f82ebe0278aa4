"""The box's alerts: raised durably, recorded, and acknowledged by the centre's operators.

`replay` and `run` both hand their alerts to `AlertLog.emit`, so a recorded file and a live camera
take the same path to the centre. Nothing raised is lost: an alert is durable in the outbox before
anything else records it, and each start completes whatever a crash interrupted (`emit`, `recover`).
"""

from __future__ import annotations

import logging
import threading
import time

from edge import integrations
from edge.comms.delivery import Delivery
from edge.config import GateboxConfig
from edge.counting.retention import forget_expired_passage_views
from edge.protocol.alert import Alert
from edge.protocol.messages import AckAlert, AlertState
from edge.store.alert_states import AlertStates
from edge.store.events import EventsFile

log = logging.getLogger(__name__)

ALERT_KINDS = frozenset({"face_match", "elder_leaving", "plate_match"})  # the box's records also hold panics


class AlertLog:
    def __init__(
        self, config: GateboxConfig, states: AlertStates, delivery: Delivery, journal: EventsFile | None = None
    ) -> None:
        """`journal`: the box's events file (`gatebox run`: DATA_DIR/events.jsonl), faces left out."""
        self._config = config
        self.states = states
        self._delivery = delivery
        self.journal = journal
        self._emit_lock = threading.Lock()

    def emit(self, alert: Alert) -> None:
        """Raise an alert: durable, recorded and on its way to the centre when this returns.

        The writes, in this order; a crash between any two is completed at the next start (`recover`):
        1. the outbox, *held* (fsynced: from here on the alert cannot be lost; not sent yet);
        2. the face snapshot, then the alert record (`gatebox alerts`);
        3. the journal line (`events.jsonl`), fsynced;
        4. release: the link may send it. Until then the centre cannot have it, so it can never
           confirm an alert the box has not recorded, nor hold one the journal lacks.
        """
        # Recorded or not (a full disk raises in `_record`), the alert is released to reach the centre.
        with self._emit_lock, self._delivery.held(alert):
            self._record(alert)
        if self._config.integrations.events.enabled:  # after the alert: queued behind it, never before
            self._delivery.send(integrations.raised(alert))

    def _record(self, alert: Alert) -> None:
        """Steps 2 and 3 of `emit`; each skipped when already done."""
        self.states.record(alert)
        if self.journal is not None and alert.event_id not in self.journal:
            self.journal(alert)

    def recover(self) -> None:
        """Complete every alert a crash left half raised: held in the outbox (or, after a power cut,
        queued without its record) gets its record and journal line, then is released. The outbox
        holds the whole alert until the centre confirms it, so nothing else needs re-queueing.
        Run it before the link starts: nothing half-raised may leave."""
        queued = self._delivery.queued(Alert)
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
            self._delivery.release(event_id)
            completed += 1
        if completed:
            log.warning("completed %d alert(s) a crash interrupted while they were raised", completed)
        # Every alert recorded is confirmed by the centre or still queued; anything else is a bug.
        lost = set(self.states.unconfirmed_alerts()) - {event_id for event_id, _, _ in queued}
        if lost:
            log.error("%d alert(s) recorded but neither confirmed by the centre nor queued: %s",
                      len(lost), ", ".join(sorted(lost)[:10]))  # fmt: skip

    def purge_snapshots(self, now: float | None = None) -> None:
        """Face snapshots past `alerts.snapshot_retention_days` go (at start, and from time to time), and
        so do expired face views of passages still in the outbox."""
        removed = self.states.purge_snapshots(self._config.alerts.snapshot_retention_days * 86400)
        if removed:
            log.info("deleted %d face snapshot(s) past their retention", removed)
        forget_expired_passage_views(self._delivery, time.time() if now is None else now)

    def apply_ack(self, command: AckAlert) -> None:
        """An operator acknowledged or closed an alert (the `ack_alert` command): recorded, and reported back."""
        before = self.states.get(command.event_id)
        if not self.states.set_state(command.event_id, command.state, command.note, command.by):
            log.info("ack for %s ignored: unknown alert, or already %s", command.event_id, command.state)
            return
        log.info("alert %s is now %s", command.event_id, command.state)
        now = time.time()
        self._delivery.send(AlertState(event_id=command.event_id, state=command.state, note=command.note,
                                       by=command.by, ts=now))  # fmt: skip
        after = self.states.get(command.event_id)
        if self._config.integrations.events.enabled and before and after and after.kind in ALERT_KINDS:
            self._delivery.send(integrations.state_changed(after, before.state, now))  # panics have no events

    def close(self) -> None:
        self.states.close()
        if self.journal is not None:
            self.journal.close()
