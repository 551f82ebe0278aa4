"""What surrounds the pipelines of one box: alert records, the outbox and the link to the centre.

`replay` and `run` both hand their alerts to `BoxServices.emit`, so a recorded file and a live
camera take the same path to the centre.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

from edge.alerts import Alert
from edge.comms import topics
from edge.comms.link import CentreLink
from edge.comms.messages import Command
from edge.comms.outbox import Outbox, OutgoingMessage, Priority
from edge.config import GateboxConfig
from edge.security.signing import load_public_key
from edge.store.alert_states import AlertStates

log = logging.getLogger(__name__)


class BoxServices:
    def __init__(self, config: GateboxConfig, data_dir: Path, connect: bool = True) -> None:
        self._config = config
        self.states = AlertStates(data_dir)
        self.states.purge_snapshots(config.alerts.snapshot_retention_days * 86400)
        self.outbox = Outbox(data_dir / "outbox.sqlite3", int(config.link.outbox_budget_mb * 1024 * 1024))
        self.link: CentreLink | None = None
        if connect:
            key_path = config.link.centre_public_key
            if key_path is None:
                log.warning("link.centre_public_key is not set: commands from the centre will be refused")
            self.link = CentreLink(
                config.broker, config.box, config.link, self.outbox,
                load_public_key(key_path) if key_path else None, self.on_command,
            )  # fmt: skip
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
        """Record the alert and queue it for the centre; durable when this returns."""
        self.states.record(alert)
        topic = topics.box_topic(self._config.broker, self._config.box, topics.ALERT)
        self.outbox.put(OutgoingMessage(alert.event_id, "alert", Priority.ALERT, topic, alert.to_json().encode(), True))
        if self.link:
            self.link.wake()

    def on_command(self, command: Command) -> None:
        if command.command == "ack_alert":
            if not self.states.set_state(command.event_id, command.state, command.note, command.by):
                log.info("ack for %s ignored: unknown alert, or already %s", command.event_id, command.state)
                return
            log.info("alert %s is now %s", command.event_id, command.state)
            body = {"schema": "gatebox.alert_state/1", "event_id": command.event_id, "state": command.state,
                    "note": command.note, "by": command.by, "ts": time.time()}  # fmt: skip
            topic = topics.box_topic(self._config.broker, self._config.box, topics.ALERT_STATE)
            message_id = f"state-{uuid.uuid4().hex}"
            self.outbox.put(
                OutgoingMessage(message_id, "alert_state", Priority.OTHER, topic, json.dumps(body).encode(), False)
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

    def close(self) -> None:
        if self.link:
            self.link.close()
        self.outbox.close()
        self.states.close()
