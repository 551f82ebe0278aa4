"""A subscriber that collects messages, for asserting what reached the broker."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol.messages import receipt_for


class Collector:
    """Subscribes to `topics`; with `receipts`, confirms every alert to its box as the centre does.

    `receipts_from`: hold every receipt until that many alerts and panics have arrived, then send them
    all, so that a test knows the sender had raised them all before the first receipt reached it."""

    def __init__(
        self, port: int, *topics: str, receipts: bool = False, client_id: str = "", username: str | None = None,
        password: str | None = None, ca: str | None = None, receipts_from: int = 1,
    ) -> None:  # fmt: skip
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._held_receipts: list[tuple[str, bytes]] = []
        self._receipts_from = receipts_from
        self._subscribed: queue.Queue[int] = queue.Queue()  # mids of SUBACKs
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
            self._held_receipts.append(receipt_for(message.topic, event_id))
            if len(self._held_receipts) >= self._receipts_from:  # from then on, each as it comes
                self._receipts_from = 0
                for receipt in self._held_receipts:
                    client.publish(*receipt, qos=1)
                self._held_receipts.clear()

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

    def until(self, predicate: Callable[[mqtt.MQTTMessage], bool], timeout: float, what: str) -> list[mqtt.MQTTMessage]:
        """Every message up to and including the first that satisfies `predicate` (AssertionError after
        `timeout`): a barrier instead of a window, for "nothing else came" checks. One client's messages
        reach a subscriber in the order it sent them, so what it sent before the barrier is here."""
        got: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                break
            got.append(message)
            if predicate(message):
                return got
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {[m.topic for m in got]}")

    def received(self) -> list[mqtt.MQTTMessage]:
        """What has arrived so far, without waiting."""
        got: list[mqtt.MQTTMessage] = []
        while True:
            try:
                got.append(self.messages.get_nowait())
            except queue.Empty:
                return got


def went_offline(message: mqtt.MQTTMessage) -> bool:
    """A box's own `offline` (not a retained one from before): its last message at a clean stop, sent
    once everything before it was acknowledged."""
    return message.topic.endswith("/availability") and message.payload == b"offline" and not message.retain
