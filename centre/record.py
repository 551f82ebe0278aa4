"""`gatebox centre record`: store everything the boxes send in the centre's database, and confirm
each alert and panic to its box (the receiver behind the console)."""

from __future__ import annotations

import logging
import queue
import time
from collections import Counter

import paho.mqtt.client as mqtt

from centre.database import DatabaseLocation
from centre.store import CentreStore, Ingested
from edge.protocol import topics
from edge.protocol.messages import receipt_for
from edge.protocol.mqtt import BrokerConfig, connect, disconnect
from edge.protocol.wire import DEFAULT_MAX_MESSAGE_BYTES, Refusals, Refused

log = logging.getLogger(__name__)

LEAVES = (
    topics.ALERT,
    topics.PANIC,
    topics.HEARTBEAT,
    topics.AVAILABILITY,
    topics.ALERT_STATE,
    topics.LIST_ACK,
    topics.PASSAGE,
)


def subscriptions(broker: BrokerConfig) -> list[str]:
    return [topics.centre_topic(broker.topic_prefix, leaf) for leaf in LEAVES]


class Recorder:
    """Stores each message from a box and confirms its events; counts what it stored and refused.
    Nothing one message does gets past `handle`: a refusal or a failure is counted per kind
    (`<leaf>:<reason>`) and logged (the first of each kind, then at most once a minute)."""

    def __init__(self, store: CentreStore, client: mqtt.Client, topic_prefix: str = "gatebox") -> None:
        self.store = store
        self.client = client
        self.counts: Counter[str] = Counter()
        self.refusals = Refusals(log)
        self._prefix = topic_prefix + "/"

    def handle(self, message: mqtt.MQTTMessage) -> Ingested | None:
        """None when the payload was refused (logged and counted; nothing else changes)."""
        leaf = message.topic.rsplit("/", 1)[-1][:32]
        if not message.topic.startswith(self._prefix):  # a persistent session may hold an old prefix's topics
            self.counts["ignored"] += 1
            return None
        try:
            result = self.store.ingest(message.topic, bytes(message.payload))
        except Refused as e:
            self._refused(f"{leaf}:{e.reason}", f"refused a message on {message.topic}: {e}")
            return None
        except ValueError as e:  # a model's own check
            self._refused(f"{leaf}:invalid", f"refused a message on {message.topic}: {e}")
            return None
        except Exception as e:  # a bug, or the disk: this message is not confirmed; its box sends it again
            self._refused(f"{leaf}:error", f"could not store a message on {message.topic}: {e!r}", error=True)
            return None
        self.counts[result.kind] += 1
        if result.clashes_with:
            others = ", ".join(f"{s}/{b}" for s, b in result.clashes_with)
            self.refusals.note(f"{leaf}:clash", f"{result.site}/{result.box_id} sent event {result.event_id}, "
                               f"already sent by {others}: kept apart as its own, never merged")  # fmt: skip
        if result.receipt_id:  # stored (or already had it): the box may forget it
            self.client.publish(*receipt_for(message.topic, result.receipt_id), qos=1)
        return result

    def _refused(self, kind: str, detail: str, error: bool = False) -> None:
        self.counts["refused"] += 1
        self.refusals.note(kind, detail, logging.ERROR if error else logging.WARNING, exc_info=error)


def record(broker: BrokerConfig, db: DatabaseLocation, timeout: float | None = None,
           client_id: str = "gatebox-centre-record",
           max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> dict[str, int]:  # fmt: skip
    """Run until `timeout` (or forever); returns counts of what was stored and refused. Its MQTT
    session persists (`client_id`): what boxes send while it is down waits at the broker."""
    store = CentreStore(db, max_message_bytes)
    client, inbox = connect(broker, subscriptions(broker), client_id=client_id, clean_session=False)
    recorder = Recorder(store, client, broker.topic_prefix)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                recorder.handle(inbox.get(timeout=0.5))
            except queue.Empty:
                continue
    finally:
        time.sleep(0.2)  # let the last receipts leave
        disconnect(client)
        store.close()
    return dict(recorder.counts) | dict(recorder.refusals.counts)  # stored per kind; refused per `<leaf>:<reason>`
