"""`gatebox centre watch`: the command centre's live view of alerts, alert states and box availability.

It is also the centre's receiver: every alert it gets is confirmed to its box with a receipt (the
box keeps re-sending until then), and alerts seen before (same `event_id`) are not shown again.
"""

from __future__ import annotations

import base64
import json
import queue
import sys
import time
from pathlib import Path
from typing import TextIO

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from edge.alerts import Alert
from edge.comms import topics
from edge.comms.mqtt import make_client
from edge.config import BrokerConfig
from edge.errors import GateboxError

# One line for each kind of status message a box sends (box, parsed payload -> text).
STATUS_LINES = {
    topics.ALERT_STATE: lambda box, m: f"STATE {box} event={m['event_id']} {m['state']} by={m.get('by')}",
    topics.DEVICE: lambda box, m: f"DEVICE {box} {m['kind']} device={m['device_id']} {m['detail']}",
}


def format_alert(alert: Alert) -> str:
    return (
        f"ALERT {alert.ts.isoformat(timespec='seconds')} {alert.site}/{alert.box_id}/{alert.camera} "
        f"list={alert.list} subject={alert.subject_id} score={alert.score:.2f} "
        f"frame={alert.frame} track={alert.track_id} event={alert.event_id}"
    )


def connect(broker: BrokerConfig, subscriptions: list[str]) -> tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]:
    """A centre-side client subscribed (again after every reconnect) to `subscriptions`."""
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    client = make_client(broker, client_id="")

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason, properties) -> None:
        if not reason.is_failure and subscriptions:
            client.subscribe([(t, 1) for t in subscriptions])

    client.on_connect = on_connect
    client.on_message = lambda client, userdata, message: inbox.put(message)
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
    except OSError as e:
        raise GateboxError(f"cannot reach MQTT broker {broker.host}:{broker.port}: {e}") from None
    client.loop_start()
    return client, inbox


def wait_connected(client: mqtt.Client, broker: BrokerConfig, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not client.is_connected():
        if time.monotonic() > deadline:
            raise GateboxError(f"cannot connect to MQTT broker {broker.host}:{broker.port}")
        time.sleep(0.05)


def watch(
    broker: BrokerConfig,
    out: TextIO = sys.stdout,
    as_json: bool = False,
    count: int | None = None,
    timeout: float | None = None,
    snapshots_dir: Path | None = None,
    receipts: bool = True,
) -> int:
    """Print alerts, alert states and availability changes as they arrive; returns the number of
    distinct alerts seen. Stops after `count` distinct alerts or `timeout` seconds when given.
    A malformed payload is reported on stderr and skipped."""
    prefix = broker.topic_prefix
    leaves = (topics.ALERT, topics.AVAILABILITY, topics.ALERT_STATE, topics.PANIC, topics.DEVICE)
    client, inbox = connect(broker, [topics.centre_topic(prefix, leaf) for leaf in leaves])
    if snapshots_dir:
        snapshots_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: set[str] = set()
    seen_panics: set[str] = set()
    info = sys.stderr if as_json else out
    try:
        while count is None or len(seen) < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                message = inbox.get(timeout=min(left, 1.0) if left is not None else 1.0)
            except queue.Empty:
                continue
            parts = message.topic.split("/")
            box, leaf = "/".join(parts[1:3]), parts[-1]
            if leaf == topics.AVAILABILITY:
                print(f"BOX {box} {message.payload.decode('utf-8', 'replace')}", file=info, flush=True)
                continue
            if leaf == topics.PANIC:
                _show_panic(client, message, parts, seen_panics, receipts, info, snapshots_dir)
                continue
            if leaf in STATUS_LINES:
                try:
                    print(STATUS_LINES[leaf](box, json.loads(message.payload)), file=info, flush=True)
                except (ValueError, KeyError, TypeError) as e:
                    print(f"warning: skipped malformed {leaf} message on {message.topic}: {e}", file=sys.stderr)
                continue
            try:
                alert = Alert.model_validate(json.loads(message.payload))
            except (ValueError, ValidationError) as e:
                print(f"warning: skipped malformed alert on {message.topic}: {e}", file=sys.stderr, flush=True)
                continue
            if receipts:  # confirm even a duplicate: the box re-sent it because it missed our receipt
                receipt_topic = "/".join([*parts[:-1], topics.RECEIPT])
                client.publish(receipt_topic, json.dumps({"event_ids": [alert.event_id]}), qos=1)
            if alert.event_id in seen:
                continue
            seen.add(alert.event_id)
            print(message.payload.decode() if as_json else format_alert(alert), file=out, flush=True)
            if snapshots_dir:
                (snapshots_dir / f"{alert.event_id}.jpg").write_bytes(base64.b64decode(alert.snapshot_jpeg_b64))
    finally:
        time.sleep(0.2)  # let the last receipts leave
        client.disconnect()
        client.loop_stop()
    return len(seen)


def _show_panic(client: mqtt.Client, message: mqtt.MQTTMessage, parts: list[str], seen: set[str], receipts: bool,
                out: TextIO, snapshots_dir: Path | None) -> None:  # fmt: skip
    """Panics stand out; each message (an event and its updates) is shown once and confirmed."""
    from edge.panic.models import PanicEvent

    try:
        panic = PanicEvent.model_validate(json.loads(message.payload))
    except (ValueError, ValidationError) as e:
        print(f"warning: skipped malformed panic on {message.topic}: {e}", file=sys.stderr, flush=True)
        return
    if receipts:
        client.publish("/".join([*parts[:-1], topics.RECEIPT]), json.dumps({"event_ids": [panic.message_id]}), qos=1)
    if panic.message_id in seen:
        return
    seen.add(panic.message_id)
    label = {"panic": "PANIC", "long_press": "PANIC-LONG", "cancel": "PANIC-CANCEL"}[panic.kind]
    print(
        f"!!! {label} {panic.pressed_at.isoformat(timespec='seconds')} {panic.site}/{panic.box_id} "
        f"device={panic.device_id} household={panic.household or '-'} address={panic.address or '-'} "
        f"presses={panic.presses} seq={panic.sequence} battery={panic.battery if panic.battery is not None else '-'} "
        f"event={panic.event_id}",
        file=out,
        flush=True,
    )
    if snapshots_dir and panic.snapshot_jpeg_b64:  # the nearest camera's view
        (snapshots_dir / f"{panic.event_id}.jpg").write_bytes(base64.b64decode(panic.snapshot_jpeg_b64))
