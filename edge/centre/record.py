"""`gatebox centre record`: store everything the boxes send in the centre's database, and confirm
each alert and panic to its box (the receiver the console reads from)."""

from __future__ import annotations

import json
import logging
import queue
import time
from pathlib import Path

from edge.centre.store import CentreStore
from edge.centre.watch import connect
from edge.comms import topics
from edge.config import BrokerConfig

log = logging.getLogger(__name__)

LEAVES = (topics.ALERT, topics.PANIC, topics.HEARTBEAT, topics.AVAILABILITY, topics.ALERT_STATE, topics.LIST_ACK)


def record(broker: BrokerConfig, db: Path, timeout: float | None = None) -> dict[str, int]:
    """Run until `timeout` (or forever); returns counts of what was stored and refused."""
    store = CentreStore(db)
    client, inbox = connect(broker, [topics.centre_topic(broker.topic_prefix, leaf) for leaf in LEAVES])
    counts: dict[str, int] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                message = inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                result = store.ingest(message.topic, message.payload)
            except (ValueError, KeyError, TypeError) as e:
                counts["refused"] = counts.get("refused", 0) + 1
                log.warning("refused a message on %s: %s", message.topic, str(e)[:200])
                continue
            counts[result.kind] = counts.get(result.kind, 0) + 1
            if result.receipt_id:  # stored (or already had it): the box may forget it
                receipt_topic = message.topic.rsplit("/", 1)[0] + "/" + topics.RECEIPT
                client.publish(receipt_topic, json.dumps({"event_ids": [result.receipt_id]}), qos=1)
    finally:
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
        store.close()
    return counts
