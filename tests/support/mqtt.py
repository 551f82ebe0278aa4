"""A subscriber that collects messages, for asserting what reached the broker."""

from __future__ import annotations

import json
import queue
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol.messages import receipt_for


class Collector:
    """Subscribes to `topics`; with `receipts`, confirms every alert to its box as the centre does."""

    def __init__(
        self, port: int, *topics: str, receipts: bool = False, client_id: str = "", username: str | None = None,
        password: str | None = None, ca: str | None = None,
    ) -> None:  # fmt: skip
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._subscribed = queue.Queue()
        self._receipts = receipts
        # A fixed client id keeps a persistent session: messages wait at the broker while we are away.
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not client_id)
        self.client.reconnect_delay_set(1, 2)
        if username:
            self.client.username_pw_set(username, password)
        if ca:
            self.client.tls_set(ca_certs=ca)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rc, p: self._subscribed.put(mid)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._subscribed.get(timeout=10)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)
        if self._receipts and message.topic.rsplit("/", 1)[-1] in ("alert", "panic"):
            body = json.loads(message.payload)
            event_id = body.get("message_id") or body["event_id"]  # panics are confirmed per message
            client.publish(*receipt_for(message.topic, event_id), qos=1)

    def next(self, timeout: float = 10.0, topic_suffix: str | None = None) -> mqtt.MQTTMessage:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no message{' on *' + topic_suffix if topic_suffix else ''} in {timeout} s")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if topic_suffix is None or msg.topic.endswith(topic_suffix):
                return msg

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drain(self, timeout: float, until: set[str] | None = None) -> list[mqtt.MQTTMessage]:
        """Messages received within `timeout` (stops early once alerts with all `until` ids arrived)."""
        got: list[mqtt.MQTTMessage] = []
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (until is not None and until <= seen):
            try:
                message = self.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            got.append(message)
            if message.topic.endswith("/alert"):
                seen.add(json.loads(message.payload)["event_id"])
        return got
