"""MQTT clients configured from the config (paho-mqtt 2.x, VERSION2 callbacks): credentials, TLS, backoff."""

from __future__ import annotations

import contextlib
import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import BrokerConfig
from edge.errors import ConfigError


def make_client(broker: BrokerConfig, client_id: str, clean_session: bool = True) -> mqtt.Client:
    """A configured (not yet connected) paho client: credentials, TLS, reconnect backoff. With
    `clean_session=False` the broker keeps its subscriptions and queues QoS 1 messages while away."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                         clean_session=clean_session)  # fmt: skip
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
    client.reconnect_delay_set(min_delay=1, max_delay=round(broker.reconnect_max_s))
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: mqtt.Client, userdata: object, sock: object) -> None:
    """Alerts are small and rare: send each at once instead of letting Nagle's algorithm hold it
    (~40 ms against a delayed ACK)."""
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
