"""MQTT, the wire both programs speak: the broker settings (`broker:` in either program's config)
and the one way a client is made, connected, waited on and torn down (paho-mqtt 2.x, VERSION2
callbacks). paho-mqtt is the one third-party package `edge.protocol` imports beside pydantic, numpy
and cryptography: MQTT is the transport the contract is written for."""

from __future__ import annotations

import contextlib
import queue
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict, Field

from edge.protocol.errors import ConfigError, GateboxError
from edge.protocol.wire import Slug


class TlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = Field(False, description="Connect with TLS.")
    ca_file: Path | None = Field(None, description="CA bundle that signed the broker's certificate.")
    cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="Client private key (mutual TLS).")


class BrokerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str = Field("127.0.0.1", description="MQTT broker host of the command centre.")
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port.")
    username: str | None = Field(None, description="MQTT user name, if the broker requires one.")
    password_file: Path | None = Field(None, description="File holding the MQTT password (kept out of the YAML).")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")
    topic_prefix: Slug = Field("gatebox", description="First level of every topic.")
    keepalive_s: int = Field(15, ge=5, le=600, description="MQTT keepalive; the LWT fires ~1.5x this after loss.")
    reconnect_max_s: float = Field(30.0, ge=1, description="Longest wait between reconnection attempts.")
    flush_timeout_s: float = Field(
        10.0,
        ge=0,
        description="On exit, wait this long for the centre to confirm queued alerts (the rest stay "
        "in the outbox and are sent on the next start).",
    )


Inbox = queue.Queue[mqtt.MQTTMessage]


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


def connect(
    broker: BrokerConfig, subscriptions: Sequence[str] = (), client_id: str = "", clean_session: bool = True
) -> tuple[mqtt.Client, Inbox]:
    """A client connecting (in the background) and subscribed, again after every reconnect, to
    `subscriptions` at QoS 1; what arrives queues in the inbox returned with it. With a `client_id`
    and `clean_session=False` its session persists: the broker keeps what arrives while it is away.
    GateboxError when the broker cannot be reached at all."""
    inbox: Inbox = queue.Queue()
    client = make_client(broker, client_id=client_id, clean_session=clean_session)
    topics = list(subscriptions)

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason, properties) -> None:  # type: ignore[no-untyped-def]
        if not reason.is_failure and topics:
            client.subscribe([(t, 1) for t in topics])

    client.on_connect = on_connect
    client.on_message = lambda client, userdata, message: inbox.put(message)
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
    except OSError as e:
        raise GateboxError(f"cannot reach MQTT broker {broker.host}:{broker.port}: {e}") from None
    client.loop_start()
    return client, inbox


def wait_connected(client: mqtt.Client, broker: BrokerConfig, timeout: float = 10.0) -> None:
    """Until the broker has accepted `client`'s connection; GateboxError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not client.is_connected():
        if time.monotonic() > deadline:
            raise GateboxError(f"cannot connect to MQTT broker {broker.host}:{broker.port}")
        time.sleep(0.05)


def disconnect(client: mqtt.Client) -> None:
    """Tear a client down: disconnect (no last will) and stop its network thread."""
    client.disconnect()
    client.loop_stop()


@contextlib.contextmanager
def session(
    broker: BrokerConfig, subscriptions: Sequence[str] = (), timeout: float = 10.0
) -> Iterator[tuple[mqtt.Client, Inbox]]:
    """A short-lived client (a one-off command: an ack, a list publication), connected within
    `timeout` and torn down when the block ends."""
    client, inbox = connect(broker, subscriptions)
    try:
        wait_connected(client, broker, timeout)
        yield client, inbox
    finally:
        disconnect(client)
