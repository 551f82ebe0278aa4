"""What surrounds the pipelines of one box, wired together: `replay` and `run` both build a `Box`.

- `alerts` (`AlertLog`): alerts raised durably, recorded, acknowledged;
- `delivery` (`Delivery`): every message for the centre, by type, through the durable outbox;
- `link` (`Link`): the connection to the centre's broker (MQTT by default; any `Link` for tests);
- `commands` (`CommandChannel`): signed commands, each handed to its owner (`ack_alert`: `alerts`);
- `list_sync` (`ListSync`): lists from the centre, applied, then acknowledged (`ListAck`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edge import integrations
from edge.alert_log import AlertLog
from edge.comms.commands import CommandChannel
from edge.comms.delivery import Delivery
from edge.comms.link import Link, PahoLink
from edge.comms.outbox import Outbox
from edge.config import GateboxConfig
from edge.counting.counts import PassageLike, PassageTally
from edge.lists.sync import ListSync
from edge.protocol import topics
from edge.protocol.messages import ListAck
from edge.protocol.signing import load_public_key
from edge.recognition.embedder import configured_embedder_id
from edge.store.alert_states import AlertStates
from edge.store.events import EventsFile

log = logging.getLogger(__name__)


def mqtt_link(config: GateboxConfig) -> PahoLink:
    """The box's MQTT link: its client id, and its presence on `<prefix>/<site>/<box>/availability`."""
    box = config.box
    return PahoLink(config.broker, f"gatebox-{box.site}-{box.box_id}",
                    topics.box_topic(config.broker, box, topics.AVAILABILITY), config.link.max_inflight)  # fmt: skip


class Box:
    def __init__(
        self, config: GateboxConfig, data_dir: Path, *, connect: bool = True, link: Link | None = None,
        journal: Path | None = None, on_gallery_change: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """`connect`: talk to the centre over `link`, by default the MQTT link the config describes
        (False: alerts only wait in the outbox). `journal`: the box's events file (`gatebox run`:
        DATA_DIR/events.jsonl). `on_gallery_change`: runs after every list update is stored; given here,
        it is in place before the link starts, so not even a list applied from the first retained
        message is missed."""
        self.config = config
        self.data_dir = data_dir
        self._gallery_listeners = [on_gallery_change] if on_gallery_change else []
        states = AlertStates(data_dir)
        self.outbox = Outbox(data_dir / "outbox.sqlite3", int(config.link.outbox_budget_mb * 1024 * 1024),
                             on_confirmed=states.confirm)  # fmt: skip
        self.link: Link | None = (link or mqtt_link(config)) if connect else None
        self.delivery = Delivery(config, self.outbox, self.link)
        self.alerts = AlertLog(config, states, self.delivery, EventsFile(journal, faces=False) if journal else None)
        self.alerts.purge_snapshots()
        self.alerts.recover()  # before the link starts: nothing half-raised may leave
        self.passage_counts = PassageTally()  # since start, per camera, for the heartbeat
        self.commands: CommandChannel | None = None
        self.list_sync: ListSync | None = None
        if self.link is not None:
            self._connect(self.link)

    @property
    def states(self) -> AlertStates:
        return self.alerts.states

    def _connect(self, link: Link) -> None:
        config = self.config
        key_path = config.link.centre_public_key
        if key_path is None:
            log.warning("link.centre_public_key is not set: commands and lists from the centre will be refused")
        key = load_public_key(key_path) if key_path else None
        self.commands = CommandChannel(config, key, link)
        self.commands.register("ack_alert", self.alerts.apply_ack)
        self.list_sync = ListSync(config.broker.topic_prefix, key, self.data_dir, config.lists, self.on_list_applied,
                                  config.link.list_timeout_s, int(config.link.max_list_mb * 1024 * 1024),
                                  config.link.max_inbound_bytes,
                                  embedder_id=configured_embedder_id(config.recognition))  # fmt: skip
        self.list_sync.attach(link)
        if config.integrations.home_assistant.enabled:  # retained: sent again at every connect, cameras as now
            link.on_connection(lambda up: self.delivery.send(integrations.discovery(config)) if up else None)
        self.delivery.start()
        link.start()
        if not link.wait_connected(timeout=5.0):
            log.warning("MQTT broker %s:%d not reachable yet; alerts wait in the outbox until it is",
                        config.broker.host, config.broker.port)  # fmt: skip
        pending = self.outbox.stats().depth
        if pending:
            log.info("outbox holds %d message(s) from before; sending them first", pending)

    def on_list_applied(self, list_name: str, version: int, entries: int) -> None:
        """A list update is stored (from `list_sync`): every camera matches against it, and the centre hears."""
        for listener in self._gallery_listeners:
            listener()
        self.delivery.send(ListAck(list=list_name, version=version, entries=entries, ts=time.time()))

    def passages(self, records: Sequence[PassageLike]) -> None:
        """People and vehicles that passed the gate, for the centre's passage log and counts (low priority)."""
        box = self.config.box
        messages = [record.message(box.site, box.box_id) for record in records]
        for message in messages:
            self.delivery.send(message)
        self.passage_counts.add(messages)

    def drain(self, timeout_s: float) -> None:
        """Wait (up to `timeout_s`) for the centre to confirm everything queued."""
        self.delivery.drain(timeout_s)

    def close(self) -> None:
        self.delivery.close()
        if self.link is not None:
            self.link.close()
        self.outbox.close()
        self.alerts.close()
