"""Sending to the centre: a message's type says where it goes and how (`ROUTES`); `Delivery` does the rest.

`Delivery.send(message)` takes a wire model (an alert, a panic, a report) and derives its topic, its
priority in the outbox and whether it needs the centre's receipt from its type; an alert's priority
also from its list's kind (`ALERT_PRIORITY`). Queued messages are durable in the outbox before `send`
returns and leave over the link (`edge.comms.link`) as it allows: highest priority first, at most
`link.max_inflight` unacknowledged, again after every reconnect and every `link.resend_after_s` until
the centre's receipt names them (or, for messages that need none, until the broker's PUBACK).

Threads: the link's dispatch thread only queues what happened (PUBACKs, receipts, connection
changes); one delivery thread owns the rest, so everything that arrived together is one outbox
transaction, and nothing is published while holding the outbox's lock.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import BaseModel, ValidationError

from edge.comms.link import Link, Refused
from edge.comms.outbox import Outbox, OutgoingMessage, Priority
from edge.config import GateboxConfig
from edge.protocol import topics
from edge.protocol.alert import Alert
from edge.protocol.bounded_json import JsonRefused, check_json_bounds
from edge.protocol.lists import ListKind
from edge.protocol.messages import (
    AlertEvent,
    AlertState,
    CameraPreview,
    HaDeviceDiscovery,
    Heartbeat,
    ListAck,
    Passage,
    Receipt,
)
from edge.protocol.panic import DeviceNotice, PanicEvent

log = logging.getLogger(__name__)

MAX_EVENTS_PER_ROUND = 2000
MAX_INBOUND_DEPTH = 16  # a receipt nests 2 deep; anything far deeper is an attack


@dataclass(frozen=True)
class Route:
    """Where messages of one type go, and how."""

    leaf: str  # topic: <prefix>/<site>/<box>/<leaf>
    priority: Priority  # order in the outbox
    needs_receipt: bool  # True: kept and sent again until the centre's receipt names it; False: gone on PUBACK
    receipt_names: str | None = None  # the field a receipt names (the outbox's event id); None: one is made up
    queued: bool = True  # False: best effort (not kept, dropped while disconnected)
    retain: bool = False  # best effort only: the broker keeps the last one for every later subscriber
    qos: int = 0  # best effort only
    topic: Callable[[GateboxConfig], str] | None = None  # a topic outside the box's prefix (`leaf` names it then)
    exclude_none: bool = False  # leave unset fields out (a reader that refuses `null` for an option)


def _ha_discovery_topic(config: GateboxConfig) -> str:
    return topics.ha_discovery_topic(config.integrations.home_assistant.discovery_prefix, config.box)


ROUTES: dict[type[BaseModel], Route] = {
    PanicEvent: Route(topics.PANIC, Priority.PANIC, needs_receipt=True, receipt_names="message_id"),
    Alert: Route(topics.ALERT, Priority.ALERT, needs_receipt=True, receipt_names="event_id"),
    AlertState: Route(topics.ALERT_STATE, Priority.OTHER, needs_receipt=False),
    ListAck: Route(topics.LIST_ACK, Priority.OTHER, needs_receipt=False),
    DeviceNotice: Route(topics.DEVICE, Priority.OTHER, needs_receipt=False),
    Passage: Route(topics.PASSAGE, Priority.OTHER, needs_receipt=False),
    Heartbeat: Route(topics.HEARTBEAT, Priority.OTHER, needs_receipt=False, queued=False),
    # A preview is not an event: never in the outbox (a box offline when asked has nothing worth sending
    # later), never before anything queued; QoS 1 so one the broker took reaches the console.
    CameraPreview: Route(topics.PREVIEW, Priority.OTHER, needs_receipt=False, queued=False, qos=1),
    # Opt-in, for other tools (`integrations`). Alert events are queued, in order: a tool that missed an
    # `end` would show the alert open for ever. The discovery config is retained and sent again at every
    # connect, so best effort loses nothing; its topic, under Home Assistant's prefix, names the box.
    AlertEvent: Route(topics.EVENTS, Priority.OTHER, needs_receipt=False),
    HaDeviceDiscovery: Route(
        "ha_discovery",
        Priority.OTHER,
        needs_receipt=False,
        queued=False,
        retain=True,
        qos=1,
        topic=_ha_discovery_topic,
        exclude_none=True,  # Home Assistant refuses `null` for an option it knows
    ),
}

# A missing elder seen, or an at-risk elder leaving, goes before watchlist alerts.
ALERT_PRIORITY: dict[ListKind, Priority] = {
    "alert": Priority.ALERT, "urgent": Priority.URGENT_ALERT, "leaving-only": Priority.URGENT_ALERT,
    "plates": Priority.ALERT,
}  # fmt: skip


class Delivery:
    """Every message the box sends to the centre goes through `send` (or `held`)."""

    def __init__(self, config: GateboxConfig, outbox: Outbox, link: Link | None = None) -> None:
        """Without a `link` messages are only queued (a later start sends them)."""
        self._config = config
        self.outbox = outbox
        self.link = link
        self._alert_priority = {name: ALERT_PRIORITY[kind] for name, kind in config.lists.items()}
        self._events: queue.Queue[tuple[str, object]] = queue.Queue()
        self._inflight: dict[int, tuple[str, bool]] = {}  # token -> (event_id, needs_receipt)
        self._tokens = itertools.count()
        self._online = False  # the last connection change this thread handled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        if link is not None:
            link.route(self._topic(topics.RECEIPT), self._on_receipt)
            link.on_connection(lambda up: self._events.put(("connection", up)))

    def _topic(self, leaf: str) -> str:
        return topics.box_topic(self._config.broker, self._config.box, leaf)

    # -- sending ------------------------------------------------------------------------------------
    def address(self, message: BaseModel) -> OutgoingMessage:
        """`message` as the outbox keeps it: topic, priority, whether it needs a receipt, and its event id."""
        route = self._route(message)
        priority = route.priority
        if isinstance(message, Alert):
            priority = self._alert_priority.get(message.list, route.priority)
        event_id = getattr(message, route.receipt_names) if route.receipt_names else f"{route.leaf}-{uuid.uuid4().hex}"
        payload = message.model_dump_json(by_alias=True, exclude_none=route.exclude_none).encode()
        topic = route.topic(self._config) if route.topic else self._topic(route.leaf)
        return OutgoingMessage(event_id, route.leaf, priority, topic, payload, route.needs_receipt)

    @staticmethod
    def _route(message: BaseModel) -> Route:
        route = ROUTES.get(type(message))
        if route is None:
            raise TypeError(f"{type(message).__name__} is not a message for the centre (edge.comms.delivery.ROUTES)")
        return route

    def send(self, message: BaseModel) -> None:
        """Durable in the outbox when this returns (best-effort messages: handed to the link, if connected)."""
        route = self._route(message)
        if not route.queued:
            if self.link is not None:
                outgoing = self.address(message)
                self.link.publish(outgoing.topic, outgoing.payload, qos=route.qos, retain=route.retain)
            return
        self.outbox.put(self.address(message))
        self.wake()

    @contextmanager
    def held(self, message: BaseModel) -> Iterator[str]:
        """Durable in the outbox on entering, sent only once the block is left (however it is left): the
        caller records the message elsewhere first. Yields its event id."""
        outgoing = self.address(message)
        self.outbox.put(outgoing, held=True)
        try:
            yield outgoing.event_id
        finally:
            self.release(outgoing.event_id)

    def release(self, event_id: str) -> None:
        """A message held since a crash may leave now."""
        self.outbox.release(event_id)
        self.wake()

    def queued(self, message_type: type[BaseModel]) -> list[tuple[str, bytes, bool]]:
        """Messages of that type still in the outbox, oldest first: (event_id, payload, held)."""
        return self.outbox.queued(ROUTES[message_type].leaf)

    def wake(self) -> None:
        self._events.put(("wake", None))

    def wait_drained(self, timeout: float) -> bool:
        """Until the outbox is empty (every message confirmed) or `timeout`; True if empty."""
        deadline = time.monotonic() + timeout
        while self.outbox.stats().depth:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def drain(self, timeout: float) -> None:
        """Wait (up to `timeout`) for the centre to confirm everything queued; what is left stays for the next start."""
        if self.link is not None and not self.wait_drained(timeout):
            log.warning("%d message(s) not yet confirmed by the centre; kept in the outbox for the next start",
                        self.outbox.stats().depth)  # fmt: skip

    def start(self) -> None:
        if self.link is not None:
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._events.put(("wake", None))
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    # -- the link's dispatch thread: only queue ------------------------------------------------------
    def _on_receipt(self, topic: str, payload: bytes) -> None:
        try:  # before any parser sees it: json recurses once per level and 30,000 levels raise RecursionError
            check_json_bounds(payload, self._config.link.max_inbound_bytes, MAX_INBOUND_DEPTH)
        except JsonRefused as e:
            raise Refused(e.reason, str(e)) from None
        try:
            receipt = Receipt.model_validate_json(payload)
        except ValidationError as e:
            raise Refused("invalid_receipt", first_error(e)) from None
        self._events.put(("delivered", receipt.event_ids))

    # -- the delivery thread ------------------------------------------------------------------------
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
                    self.outbox.requeue_unconfirmed(
                        time.time(), self._config.link.resend_after_s, self._config.link.resend_max_s
                    )
                    next_requeue = time.monotonic() + 1.0
                if self._online:
                    self._send_due()
            except Exception:  # delivery must outlive any single bad event
                log.exception("delivery: error handling %d event(s)", len(events))

    def _handle(self, events: list[tuple[str, object]]) -> None:
        delivered: list[str] = []
        for kind, value in events:
            if kind == "connection":
                self._inflight.clear()
                self._online = bool(value)
                if self._online:
                    self.outbox.resend_all()  # the broker may have lost anything not yet confirmed
            elif kind == "acked":
                event_id, needs_receipt = self._inflight.pop(value, (None, True))  # type: ignore[call-overload]
                if event_id is not None and not needs_receipt:
                    delivered.append(event_id)
            elif kind == "delivered":
                delivered += value  # type: ignore[arg-type]
        if delivered:
            self.outbox.remove(delivered)

    def _send_due(self) -> None:
        assert self.link is not None
        room = self._config.link.max_inflight - len(self._inflight)
        if room <= 0:
            return
        batch = self.outbox.due(room)
        if not batch:
            return
        self.outbox.mark_sent([m[0] for m in batch], time.time())
        for event_id, topic, payload, needs_receipt, age_s in batch:
            token = next(self._tokens)
            self._inflight[token] = (event_id, needs_receipt)
            acked = functools.partial(self._events.put, ("acked", token))
            if not self.link.publish(topic, stamp(payload, age_s), qos=1, on_acked=acked):
                del self._inflight[token]  # not handed over: due again after `resend_after_s`


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


def first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or 'payload'}: {first['msg']} ({error.error_count()} error(s))"
