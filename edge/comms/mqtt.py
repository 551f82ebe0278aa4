"""The box's MQTT link to the command centre (paho-mqtt 2.x, VERSION2 callbacks).

Alerts go out at QoS 1. Delivery is tracked by message id: paho's `publish()` returns
MQTT_ERR_NO_CONN for messages it did queue while disconnected, so its return code alone says
nothing about delivery.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.comms import topics
from edge.config import BoxConfig, BrokerConfig
from edge.errors import ConfigError

log = logging.getLogger(__name__)


def make_client(broker: BrokerConfig, client_id: str) -> mqtt.Client:
    """A configured (not yet connected) paho client: credentials, TLS, reconnect backoff."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if broker.username:
        password = None
        if broker.password_file:
            try:
                password = broker.password_file.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(f"broker.password_file: cannot read {broker.password_file}: {e}") from None
        client.username_pw_set(broker.username, password)
    if broker.tls.enabled:
        client.tls_set(
            ca_certs=str(broker.tls.ca_file) if broker.tls.ca_file else None,
            certfile=str(broker.tls.cert_file) if broker.tls.cert_file else None,
            keyfile=str(broker.tls.key_file) if broker.tls.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


class MqttPublisher:
    """Publishes the box's availability and alerts; knows which alerts the broker has acknowledged."""

    def __init__(self, broker: BrokerConfig, box: BoxConfig) -> None:
        self._broker = broker
        self._availability = topics.box_topic(broker, box, topics.AVAILABILITY)
        self._alert_topic = topics.box_topic(broker, box, topics.ALERT)
        self._client = make_client(broker, client_id=f"gatebox-{box.site}-{box.box_id}")
        self._client.will_set(self._availability, topics.OFFLINE, qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._lock = threading.Condition()
        self._unacked: set[int] = set()
        # PUBACKs that overtook publish_alert's bookkeeping (mid -> when); pruned after seconds,
        # since other publishes (availability) land here too and mids are reused after 65535.
        self._acked_before_registered: dict[int, float] = {}
        self.connected = threading.Event()

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting while the broker is away."""
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=self._broker.keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def publish_alert(self, payload: str) -> int:
        """Queue an alert at QoS 1; returns its message id."""
        # Not under self._lock: paho calls on_publish holding its own lock, and publish() takes it.
        info = self._client.publish(self._alert_topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("alert not queued: %s", mqtt.error_string(info.rc))
        with self._lock:
            if self._acked_before_registered.pop(info.mid, None) is None:
                self._unacked.add(info.mid)
        return info.mid

    @property
    def unacked(self) -> int:
        with self._lock:
            return len(self._unacked)

    def flush(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every queued alert; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._unacked:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self) -> None:
        """Graceful shutdown: retained `offline`, then disconnect (the LWT covers crashes)."""
        if self.connected.is_set():
            info = self._client.publish(self._availability, topics.OFFLINE, qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason, properties) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self._broker.host, self._broker.port, reason)
            return
        log.info("MQTT connected to %s:%d", self._broker.host, self._broker.port)
        client.publish(self._availability, topics.ONLINE, qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason, properties) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("MQTT connection lost (%s); reconnecting", reason)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason, properties) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
                self._lock.notify_all()
            else:
                now = time.monotonic()
                self._acked_before_registered[mid] = now
                for stale in [m for m, t in self._acked_before_registered.items() if now - t > 5.0]:
                    del self._acked_before_registered[stale]
