"""The box's link to the centre: the outbox drained over MQTT, receipts, signed commands, availability.

Threads: paho's network thread only queues events; one link thread owns the rest (draining the
outbox, applying receipts, running commands), so database work never happens inside a paho
callback (which holds paho's lock) and `publish` is never called while holding the outbox's.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.comms.outbox import Outbox
from edge.config import BoxConfig, LinkConfig
from edge.lists.sync import ListSync
from edge.protocol import topics
from edge.protocol.bounded_json import JsonRefused, check_json_bounds
from edge.protocol.messages import Command, Receipt
from edge.protocol.mqtt import BrokerConfig, make_client
from edge.protocol.signing import BadSignature, open_sealed

log = logging.getLogger(__name__)

CommandHandler = Callable[[Command], None]
MAX_EVENTS_PER_ROUND = 2000
MAX_INBOUND_DEPTH = 16  # receipts and command envelopes nest 2 deep; anything far deeper is an attack


@dataclass(frozen=True)
class _Inbound:
    topic: str
    payload: bytes


class CentreLink:
    def __init__(
        self,
        broker: BrokerConfig,
        box: BoxConfig,
        link: LinkConfig,
        outbox: Outbox,
        centre_key: Ed25519PublicKey | None,
        on_command: CommandHandler | None = None,
        list_sync: ListSync | None = None,
    ) -> None:
        self._broker = broker
        self._link = link
        self._outbox = outbox
        self._centre_key = centre_key
        self._on_command = on_command
        self._list_sync = list_sync
        self._box = box
        self.availability_topic = topics.box_topic(broker, box, topics.AVAILABILITY)
        self._receipt_topic = topics.box_topic(broker, box, topics.RECEIPT)
        self._command_topic = topics.box_topic(broker, box, topics.COMMAND)
        self._client = make_client(broker, client_id=f"gatebox-{box.site}-{box.box_id}")
        self._client.will_set(self.availability_topic, topics.OFFLINE, qos=1, retain=True)
        self._client.max_inflight_messages_set(link.max_inflight)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = lambda c, u, mid, rc, p: self._events.put(("puback", mid))
        self._client.on_message = lambda c, u, m: self._events.put(("message", _Inbound(m.topic, m.payload)))
        self._events: queue.Queue[tuple[str, object]] = queue.Queue()
        self._inflight: dict[int, tuple[str, bool]] = {}  # mid -> (event_id, needs_receipt)
        self.connected = threading.Event()
        self.bad_input: Counter[str] = Counter()
        self._failures_logged: set[type[BaseException] | None] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="centre-link", daemon=True)

    # -- public API -----------------------------------------------------------------------------
    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=self._broker.keepalive_s)
        self._client.loop_start()
        self._thread.start()

    def wake(self) -> None:
        """Something new is in the outbox."""
        self._events.put(("wake", None))

    def publish_now(self, leaf: str, payload: str | bytes, retain: bool = False) -> None:
        """Best-effort, not queued (heartbeats): dropped while disconnected."""
        if self.connected.is_set():
            self._client.publish(topics.box_topic(self._broker, self._box, leaf), payload, qos=0, retain=retain)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Until the outbox is empty (every message confirmed) or `timeout`; True if empty."""
        deadline = time.monotonic() + timeout
        while self._outbox.stats().depth:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        """Graceful shutdown: retained `offline`, then disconnect (the LWT covers crashes)."""
        self._stop.set()
        self._events.put(("wake", None))
        self._thread.join(timeout=5)
        if self.connected.is_set():
            self._client.publish(self.availability_topic, topics.OFFLINE, qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks (network thread): only record what happened ------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason, properties) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self._broker.host, self._broker.port, reason)
            return
        log.info("MQTT connected to %s:%d", self._broker.host, self._broker.port)
        client.publish(self.availability_topic, topics.ONLINE, qos=1, retain=True)
        subscriptions = [(self._receipt_topic, 1), (self._command_topic, 1)]
        if self._list_sync:
            subscriptions.append((self._list_sync.subscription(), 1))
        client.subscribe(subscriptions)
        self._events.put(("connected", None))

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason, properties) -> None:
        self._events.put(("disconnected", reason))

    # -- the link thread ------------------------------------------------------------------------
    def _run(self) -> None:
        next_requeue = time.monotonic()
        while not self._stop.is_set():
            try:
                events = [self._events.get(timeout=0.5)]
            except queue.Empty:
                events = []
            while len(events) < MAX_EVENTS_PER_ROUND:  # take everything waiting: one transaction for all
                try:
                    events.append(self._events.get_nowait())
                except queue.Empty:
                    break
            try:
                self._handle(events)
                if time.monotonic() >= next_requeue:
                    self._outbox.requeue_unconfirmed(time.time(), self._link.resend_after_s)
                    if self._list_sync:
                        self._list_sync.tick()
                    next_requeue = time.monotonic() + 1.0
                if self.connected.is_set():
                    self._drain()
            except Exception:  # the link must outlive any single bad event
                log.exception("centre link: error handling %d event(s)", len(events))

    def _handle(self, events: list[tuple[str, object]]) -> None:
        delivered: list[str] = []
        for kind, value in events:
            if kind == "connected":
                self._inflight.clear()
                self._outbox.resend_all()  # the broker may have lost anything not yet confirmed
                self.connected.set()
            elif kind == "disconnected":
                self.connected.clear()
                self._inflight.clear()
                log.warning("MQTT connection lost (%s); alerts stay in the outbox until it is back", value)
            elif kind == "puback":
                event_id, needs_receipt = self._inflight.pop(value, (None, True))  # type: ignore[arg-type]
                if event_id is not None and not needs_receipt:
                    delivered.append(event_id)
            elif kind == "message":
                try:
                    delivered += self._inbound(value)  # type: ignore[arg-type]
                except Exception:  # one message must not cost the receipts and PUBACKs around it
                    self._failed(value)  # type: ignore[arg-type]
        if delivered:
            self._outbox.remove(delivered)

    def _drain(self) -> None:
        room = self._link.max_inflight - len(self._inflight)
        if room <= 0:
            return
        batch = self._outbox.due(room)
        if not batch:
            return
        self._outbox.mark_sent([m[0] for m in batch], time.time())
        for event_id, topic, payload, needs_receipt, age_s in batch:
            info = self._client.publish(topic, stamp(payload, age_s), qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self._inflight[info.mid] = (event_id, needs_receipt)

    def _inbound(self, message: _Inbound) -> list[str]:
        """Handle a receipt, command or list message; returns the event ids a receipt confirmed."""
        if self._list_sync and self._list_sync.handles(message.topic):
            self._list_sync.on_message(message.topic, message.payload)  # it bounds chunks and manifests itself
            return []
        try:  # before any parser sees it: json recurses once per level and 30,000 levels raise RecursionError
            check_json_bounds(message.payload, self._link.max_inbound_bytes, MAX_INBOUND_DEPTH)
        except JsonRefused as e:
            return self._reject(e.reason, message, str(e))
        if message.topic == self._receipt_topic:
            try:
                return Receipt.model_validate_json(message.payload).event_ids
            except ValidationError as e:
                return self._reject("invalid_receipt", message, _first_error(e))
        if message.topic == self._command_topic:
            if self._centre_key is None:
                return self._reject("commands_disabled", message, "no centre public key configured")
            try:
                body = open_sealed(message.payload, self._centre_key)
            except BadSignature as e:
                return self._reject("bad_signature", message, str(e))
            try:
                command = Command.model_validate(body)
            except ValidationError as e:
                return self._reject("invalid_command", message, _first_error(e))
            log.info("command from the centre: %s %s", command.command, getattr(command, "event_id", ""))
            if self._on_command:
                self._on_command(command)
        return []

    def _reject(self, reason: str, message: _Inbound, detail: str) -> list[str]:
        self.bad_input[reason] += 1
        log.warning("rejected message on %s (%s): %s", message.topic, reason, detail[:200])
        return []

    def _failed(self, message: _Inbound) -> None:
        """Handling a message raised: counted (`bad_input.failed`), its traceback logged once per
        exception type, and the link carries on with the next message."""
        kind = sys.exc_info()[0]
        self.bad_input["failed"] += 1
        if kind not in self._failures_logged:
            self._failures_logged.add(kind)
            log.exception("message on %s could not be handled; further %s errors are only counted", message.topic,
                          getattr(kind, "__name__", kind))  # fmt: skip
        else:
            log.warning("message on %s could not be handled (%s)", message.topic, getattr(kind, "__name__", kind))


def stamp(payload: bytes, age_s: float) -> bytes:
    """Add the box's clock at sending (`sent_at`) and how long the message waited (`age_s`, from the
    monotonic clock) to a JSON message, so the centre can tell clock skew from delay."""
    try:
        body = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(body, dict) or "schema" not in body:
        return payload
    body["sent_at"] = datetime.now(timezone.utc).isoformat()
    body["age_s"] = round(max(0.0, age_s), 3)
    return json.dumps(body, ensure_ascii=False).encode()


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or 'payload'}: {first['msg']} ({error.error_count()} error(s))"
