"""`gatebox centre watch`: the command centre's live view of alerts and box availability."""

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


def format_alert(alert: Alert) -> str:
    return (
        f"ALERT {alert.ts.isoformat(timespec='seconds')} {alert.site}/{alert.box_id}/{alert.camera} "
        f"list={alert.list} subject={alert.subject_id} score={alert.score:.2f} "
        f"frame={alert.frame} track={alert.track_id} event={alert.event_id}"
    )


def watch(
    broker: BrokerConfig,
    out: TextIO = sys.stdout,
    as_json: bool = False,
    count: int | None = None,
    timeout: float | None = None,
    snapshots_dir: Path | None = None,
) -> int:
    """Print alerts and availability changes as they arrive; returns the number of alerts seen.

    Stops after `count` alerts or `timeout` seconds when given, else runs until interrupted.
    A malformed payload is reported on stderr and skipped.
    """
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = [
        topics.centre_topic(broker.topic_prefix, topics.ALERT),
        topics.centre_topic(broker.topic_prefix, topics.AVAILABILITY),
    ]
    client = make_client(broker, client_id="")

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason, properties) -> None:
        if not reason.is_failure:
            client.subscribe([(t, 1) for t in subscribed])

    client.on_connect = on_connect
    client.on_message = lambda client, userdata, message: inbox.put(message)
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
    except OSError as e:
        raise GateboxError(f"cannot reach MQTT broker {broker.host}:{broker.port}: {e}") from None
    client.loop_start()
    if snapshots_dir:
        snapshots_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    try:
        while count is None or seen < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                message = inbox.get(timeout=min(left, 1.0) if left is not None else 1.0)
            except queue.Empty:
                continue
            leaf = message.topic.rsplit("/", 1)[-1]
            box = "/".join(message.topic.split("/")[1:3])
            if leaf == topics.AVAILABILITY:
                state = message.payload.decode("utf-8", "replace")
                print(f"BOX {box} {state}", file=out if not as_json else sys.stderr, flush=True)
                continue
            try:
                alert = Alert.model_validate(json.loads(message.payload))
            except (ValueError, ValidationError) as e:
                print(f"warning: skipped malformed alert on {message.topic}: {e}", file=sys.stderr, flush=True)
                continue
            seen += 1
            print(message.payload.decode() if as_json else format_alert(alert), file=out, flush=True)
            if snapshots_dir:
                (snapshots_dir / f"{alert.event_id}.jpg").write_bytes(base64.b64decode(alert.snapshot_jpeg_b64))
    finally:
        client.disconnect()
        client.loop_stop()
    return seen
