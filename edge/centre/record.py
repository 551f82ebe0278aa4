"""`gatebox centre record`: store everything the boxes send in the centre's database, and confirm
each alert and panic to its box (the receiver behind the console)."""

from __future__ import annotations

import json
import logging
import queue
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt

from edge.centre.store import CentreStore, Ingested
from edge.centre.watch import connect
from edge.comms import topics
from edge.config import BrokerConfig

log = logging.getLogger(__name__)

LEAVES = (topics.ALERT, topics.PANIC, topics.HEARTBEAT, topics.AVAILABILITY, topics.ALERT_STATE, topics.LIST_ACK)


def subscriptions(broker: BrokerConfig) -> list[str]:
    return [topics.centre_topic(broker.topic_prefix, leaf) for leaf in LEAVES]


class Recorder:
    """Stores each message from a box and confirms its events; counts what it stored and refused."""

    def __init__(self, store: CentreStore, client: mqtt.Client) -> None:
        self.store = store
        self.client = client
        self.counts: Counter[str] = Counter()

    def handle(self, message: mqtt.MQTTMessage) -> Ingested | None:
        """None when the payload was refused (logged and counted; nothing else changes)."""
        try:
            result = self.store.ingest(message.topic, message.payload)
        except (ValueError, KeyError, TypeError) as e:
            self.counts["refused"] += 1
            log.warning("refused a message on %s: %s", message.topic, str(e)[:200])
            return None
        self.counts[result.kind] += 1
        if result.receipt_id:  # stored (or already had it): the box may forget it
            receipt_topic = message.topic.rsplit("/", 1)[0] + "/" + topics.RECEIPT
            self.client.publish(receipt_topic, json.dumps({"event_ids": [result.receipt_id]}), qos=1)
        return result


def record(broker: BrokerConfig, db: Path, timeout: float | None = None) -> dict[str, int]:
    """Run until `timeout` (or forever); returns counts of what was stored and refused."""
    store = CentreStore(db)
    client, inbox = connect(broker, subscriptions(broker))
    recorder = Recorder(store, client)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                recorder.handle(inbox.get(timeout=0.5))
            except queue.Empty:
                continue
    finally:
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
        store.close()
    return dict(recorder.counts)
