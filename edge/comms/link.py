"""The box's connection to the broker the centre listens on: publish, route what arrives, know whether connected.

`Link` is the contract; `PahoLink` is MQTT (paho-mqtt 2.x) and `InMemoryLink` a broker in this process
for fast tests (tests/comms/test_link_contract.py runs the same cases against both). A link knows no
message of ours: whoever owns a topic routes it to its own handler (`Delivery` the receipts,
`CommandChannel` the commands, `ListSync` the lists).

Threads: the transport's own thread (paho's network thread) only queues what happened; one dispatch
thread per link runs every handler, acknowledgement, connection listener and periodic job, in order.
So database work never happens inside a paho callback (which holds paho's lock), and a handler may
publish without deadlocking. A handler refuses a message by raising `Refused(reason, detail)`: it is
counted in `bad_input[reason]` and logged; any other exception is counted as `failed`, its traceback
logged once per exception type, and the link carries on with the next message.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.protocol import topics
from edge.protocol.mqtt import BrokerConfig, make_client
from edge.protocol.wire import Refused

__all__ = ["InMemoryBroker", "InMemoryLink", "Link", "MessageHandler", "PahoLink", "Refused"]

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]  # (topic, payload), on the link's dispatch thread
ConnectionListener = Callable[[bool], None]  # True: connected (routes subscribed); False: connection lost


class Link(Protocol):
    """A connection to a broker. Routes, listeners and jobs are registered before `start`."""

    bad_input: Counter[str]  # messages refused (per `Refused.reason`) or whose handler failed (`failed`)

    @property
    def connected(self) -> bool:
        """Connected, and every route registered before `start` subscribed."""
        ...

    def route(self, topic_filter: str, handler: MessageHandler) -> None:
        """Hand every message on topics matching `topic_filter` (MQTT wildcards) to `handler`."""
        ...

    def on_connection(self, listener: ConnectionListener) -> None:
        """Tell `listener` each time the link connects (True) or loses the connection (False)."""
        ...

    def every(self, interval_s: float, job: Callable[[], None]) -> None:
        """Run `job` on the dispatch thread about every `interval_s` (for state that expires)."""
        ...

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
        on_acked: Callable[[], None] | None = None,
    ) -> bool:  # fmt: skip
        """Hand a message to the broker; False when it was not (disconnected): the caller keeps it.
        `on_acked` runs once the broker has it (QoS 1: its PUBACK), unless the connection is lost first."""
        ...

    def start(self) -> None: ...

    def wait_connected(self, timeout: float) -> bool: ...

    def close(self) -> None:
        """Stop the dispatch thread and disconnect (with a presence topic: retained `offline` first)."""
        ...


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes


@dataclass(frozen=True)
class _Connection:
    up: bool
    detail: object = None


class _Dispatcher:
    """The dispatch thread of one link and everything registered on it."""

    def __init__(self, name: str) -> None:
        self._routes: list[tuple[str, MessageHandler]] = []
        self._listeners: list[ConnectionListener] = []
        self._jobs: list[tuple[float, Callable[[], None]]] = []
        self._events: queue.Queue[_Message | _Connection | Callable[[], None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._failures_logged: set[type[BaseException] | None] = set()
        self.connected = threading.Event()
        self.bad_input: Counter[str] = Counter()

    @property
    def filters(self) -> list[str]:
        return [topic_filter for topic_filter, _ in self._routes]

    def route(self, topic_filter: str, handler: MessageHandler) -> None:
        self._routes.append((topic_filter, handler))

    def on_connection(self, listener: ConnectionListener) -> None:
        self._listeners.append(listener)

    def every(self, interval_s: float, job: Callable[[], None]) -> None:
        self._jobs.append((interval_s, job))

    def put(self, event: _Message | _Connection | Callable[[], None]) -> None:
        self._events.put(event)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._events.put(None)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        due = [time.monotonic() + interval for interval, _ in self._jobs]
        while True:
            now = time.monotonic()
            for i, (interval, job) in enumerate(self._jobs):
                if now >= due[i]:
                    due[i] = now + interval
                    self._call(job)
            try:
                event = self._events.get(timeout=max(0.0, min(due, default=now + 0.5) - time.monotonic()))
            except queue.Empty:
                continue
            if event is None:
                return
            if isinstance(event, _Message):
                self._deliver(event)
            elif isinstance(event, _Connection):
                self._connection(event)
            else:
                self._call(event)

    def _connection(self, change: _Connection) -> None:
        if change.up:
            self.connected.set()
        else:
            self.connected.clear()
            log.warning("MQTT connection lost (%s); messages wait in the outbox until it is back", change.detail)
        for listener in self._listeners:
            self._call(functools.partial(listener, change.up))

    def _deliver(self, message: _Message) -> None:
        handler = next((h for f, h in self._routes if mqtt.topic_matches_sub(f, message.topic)), None)
        if handler is None:
            return
        try:
            handler(message.topic, message.payload)
        except Refused as e:
            self.bad_input[e.reason] += 1
            log.warning("rejected message on %s (%s): %s", message.topic, e.reason, str(e)[:200])
        except Exception:  # one message must not cost the link the messages after it
            kind = sys.exc_info()[0]
            self.bad_input["failed"] += 1
            name = getattr(kind, "__name__", kind)
            if kind not in self._failures_logged:
                self._failures_logged.add(kind)
                log.exception("message on %s could not be handled; further %s errors are only counted",
                              message.topic, name)  # fmt: skip
            else:
                log.warning("message on %s could not be handled (%s)", message.topic, name)

    @staticmethod
    def _call(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # the dispatch thread must outlive any single job
            log.exception("link: a job on the dispatch thread failed")


class _DispatchedLink:
    """What every `Link` does the same way: registrations go to its dispatch thread, which also knows
    whether it is connected."""

    def __init__(self, thread_name: str) -> None:
        self._dispatch = _Dispatcher(thread_name)
        self.bad_input = self._dispatch.bad_input

    @property
    def connected(self) -> bool:
        return self._dispatch.connected.is_set()

    def route(self, topic_filter: str, handler: MessageHandler) -> None:
        self._dispatch.route(topic_filter, handler)

    def on_connection(self, listener: ConnectionListener) -> None:
        self._dispatch.on_connection(listener)

    def every(self, interval_s: float, job: Callable[[], None]) -> None:
        self._dispatch.every(interval_s, job)


class PahoLink(_DispatchedLink):
    """`Link` over MQTT: credentials, TLS and reconnect backoff from `BrokerConfig`; with a `presence_topic`,
    retained `online` there while connected and `offline` after (the broker's last will covers a crash)."""

    def __init__(
        self, broker: BrokerConfig, client_id: str, presence_topic: str | None = None, max_inflight: int = 20,
    ) -> None:  # fmt: skip
        super().__init__("link")
        self._broker = broker
        self._presence = presence_topic
        self._acks: dict[int, Callable[[], None]] = {}  # mid -> on_acked
        self._acks_lock = threading.Lock()  # a PUBACK can be read before `publish` returns its mid
        self._subscribing: int | None = None  # mid of the subscription that completes a connection
        self._client = make_client(broker, client_id=client_id)
        if presence_topic:
            self._client.will_set(presence_topic, topics.OFFLINE, qos=1, retain=True)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = lambda c, u, mid, rc, p: self._dispatch.put(lambda: self._acked(mid))
        self._client.on_message = lambda c, u, m: self._dispatch.put(_Message(m.topic, bytes(m.payload)))

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
        on_acked: Callable[[], None] | None = None,
    ) -> bool:  # fmt: skip
        if not self.connected:
            return False
        with self._acks_lock:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return False
            if on_acked is not None:
                self._acks[info.mid] = on_acked
        return True

    def start(self) -> None:
        self._dispatch.start()
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=self._broker.keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._dispatch.connected.wait(timeout)

    def close(self) -> None:
        self._dispatch.stop()
        was_connected = self.connected
        self._dispatch.connected.clear()
        if self._presence and was_connected:
            with contextlib.suppress(RuntimeError, ValueError):  # the connection went meanwhile: the will says it
                self._client.publish(self._presence, topics.OFFLINE, qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks (network thread): only record what happened ------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, properties: object
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self._broker.host, self._broker.port, reason)
            return
        log.info("MQTT connected to %s:%d", self._broker.host, self._broker.port)
        if self._presence:
            client.publish(self._presence, topics.ONLINE, qos=1, retain=True)
        filters = self._dispatch.filters
        if not filters:
            self._dispatch.put(_Connection(True))
            return
        _, self._subscribing = client.subscribe([(f, 1) for f in filters])

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, reasons: list[ReasonCode], properties: object
    ) -> None:
        if mid != self._subscribing:
            return
        refused = [f for f, reason in zip(self._dispatch.filters, reasons, strict=False) if reason.is_failure]
        if refused:
            log.error("MQTT broker refused the subscription to %s (check the broker's ACL)", ", ".join(refused))
        self._dispatch.put(_Connection(True))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, properties: object
    ) -> None:
        self._dispatch.put(self._forget_acks)  # in order: after every PUBACK read before the connection went
        self._dispatch.put(_Connection(False, reason))

    # -- the dispatch thread ---------------------------------------------------------------------
    def _forget_acks(self) -> None:
        """Messages not acknowledged when the connection went: their mids are reused after a reconnect;
        whoever waited for them sends them again."""
        with self._acks_lock:
            self._acks.clear()

    def _acked(self, mid: int) -> None:
        with self._acks_lock:
            on_acked = self._acks.pop(mid, None)
        if on_acked is not None:
            on_acked()


class InMemoryBroker:
    """A broker in this process for `InMemoryLink`s: topics with MQTT wildcards, retained messages, presence
    (last will) and outages (`stop`, `start`), every delivery through the receiver's dispatch thread."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._links: list[InMemoryLink] = []
        self._retained: dict[str, bytes] = {}
        self.running = True

    def stop(self) -> None:
        """An outage: every link loses its connection (and its presence turns `offline`, its last will)."""
        with self._lock:
            self.running = False
            for link in self._links:
                if link._online:
                    link._online = False
                    if link._presence:
                        self._retained[link._presence] = topics.OFFLINE.encode()
                    link._dispatch.put(_Connection(False, "broker stopped"))

    def start(self) -> None:
        """Back up: every started link reconnects, subscribes again and gets what is retained."""
        with self._lock:
            self.running = True
            for link in self._links:
                self.connect(link)

    def connect(self, link: InMemoryLink) -> None:
        with self._lock:
            if link not in self._links:
                self._links.append(link)
            if not self.running:
                return
            link._online = True
            if link._presence:
                self.publish(link._presence, topics.ONLINE.encode(), retain=True)
            for topic, payload in self._retained.items():
                link._receive(topic, payload)
            link._dispatch.put(_Connection(True))

    def leave(self, link: InMemoryLink) -> None:
        with self._lock:
            if link in self._links:
                self._links.remove(link)

    def publish(self, topic: str, payload: bytes, retain: bool) -> bool:
        with self._lock:
            if not self.running:
                return False
            if retain:
                if payload:
                    self._retained[topic] = payload
                else:  # an empty retained message clears the topic, as in MQTT
                    self._retained.pop(topic, None)
            for link in self._links:
                link._receive(topic, payload)
            return True


class InMemoryLink(_DispatchedLink):
    """`Link` to an `InMemoryBroker`, for fast tests of whatever speaks to the centre."""

    def __init__(self, broker: InMemoryBroker, client_id: str = "", presence_topic: str | None = None) -> None:
        super().__init__(f"link-{client_id or 'memory'}")
        self._broker = broker
        self._presence = presence_topic
        self._online = False  # as the broker sees it (changed under the broker's lock)

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
        on_acked: Callable[[], None] | None = None,
    ) -> bool:  # fmt: skip
        if not (self.connected and self._online):
            return False
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if not self._broker.publish(topic, data, retain):
            return False
        if on_acked is not None and qos > 0:
            self._dispatch.put(on_acked)
        return True

    def start(self) -> None:
        self._dispatch.start()
        self._broker.connect(self)

    def wait_connected(self, timeout: float) -> bool:
        return self._dispatch.connected.wait(timeout)

    def close(self) -> None:
        self._dispatch.stop()
        self._broker.leave(self)
        if self._online and self._presence:
            self._broker.publish(self._presence, topics.OFFLINE.encode(), retain=True)
        self._online = False
        self._dispatch.connected.clear()

    def _receive(self, topic: str, payload: bytes) -> None:
        """From the broker, under its lock."""
        if self._online and any(mqtt.topic_matches_sub(f, topic) for f in self._dispatch.filters):
            self._dispatch.put(_Message(topic, payload))
