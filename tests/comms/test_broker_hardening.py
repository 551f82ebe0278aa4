"""The shipped broker config (config/mosquitto/gatebox.conf) against a stolen box login (issue 13,
items 4 and 12): a box cannot take another client's id (box or console), messages over the size
limit are dropped while everything a box or the centre legitimately sends passes, the centre's own
processes share its login without kicking the console, and a revoked box is cut off on reload."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.alerts import jpeg_snapshot
from edge.config import load_config
from edge.protocol.bundle import CHUNK_BYTES
from edge.sources.latest import PANIC_SNAPSHOT_MAX_SIDE
from tests.conftest import REPO
from tests.support.broker import Mosquitto
from tests.support.tls import Certificates, make_certificates
from tests.support.waiting import wait_for

PASSWORDS = {"centre": "centre-pw", "siteA/box1": "a-pw", "siteB/box2": "b-pw"}
CONSOLE_ID = "gatebox-centre-console"  # console.client_id's default
MESSAGE_SIZE_LIMIT = 512 * 1024  # gatebox.conf's message_size_limit
MAX_PACKET_SIZE = 1024 * 1024  # gatebox.conf's max_packet_size


class Client:
    """A paho client that records every connect and disconnect, for telling a kicked client apart."""

    def __init__(self, broker: Mosquitto, ca: Path, user: str, client_id: str = "", centre: bool = False,
                 clean_session: bool = True, subscribe: str | None = None) -> None:  # fmt: skip
        self.connects: list[bool] = []  # session_present of each CONNACK
        self.failures: list[str] = []
        self.disconnects: list[str] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.tls_set(ca_certs=str(ca))
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(str(rc))
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self._subscribe = subscribe
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.set()
        self.client.connect("127.0.0.1", broker.centre_port if centre else broker.port)
        self.client.loop_start()
        wait_for(lambda: bool(self.connects or self.failures), 10, f"{user} to connect")
        assert not self.failures, self.failures
        if subscribe:
            assert self.subscribed.wait(10)

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode, properties: object
    ) -> None:
        if reason.is_failure:
            self.failures.append(str(reason))
            return
        self.connects.append(bool(flags.session_present))
        if self._subscribe:
            client.subscribe(self._subscribe, qos=1)

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def payloads(self, topic: str) -> list[bytes]:
        return [bytes(m.payload) for m in list(self.messages) if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def secure_broker(tmp_path: Path, certificates: Certificates) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "mosquitto", secure=certificates, passwords=PASSWORDS).start()
    yield server
    server.stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.close()


def round_trip(sender: Client, receiver: Client, topic: str, payload: str) -> None:
    """`sender` publishes and `receiver` gets it: both connections are alive and in order."""
    sender.publish(topic, payload)
    wait_for(lambda: payload.encode() in receiver.payloads(topic), 10, f"{payload} on {topic}")


def test_a_box_cannot_take_another_box_s_or_the_console_s_client_id(
    secure_broker: Mosquitto, certificates: Certificates, clients: list[Client]
) -> None:
    ca = certificates.ca
    box_a = Client(secure_broker, ca, "siteA/box1", client_id="gatebox-siteA-box1")
    console = Client(secure_broker, ca, "centre", client_id=CONSOLE_ID, centre=True, clean_session=False,
                     subscribe="gatebox/#")  # fmt: skip
    clients += [box_a, console]
    # Box B's own valid login, claiming box A's client id and then the console's.
    for stolen_id in ("gatebox-siteA-box1", CONSOLE_ID):
        Client(secure_broker, ca, "siteB/box2", client_id=stolen_id).close()
    # mosquitto closes a taken-over connection before it answers the new one: by now A and the
    # console would have been kicked; a round trip through both proves their connections are alive.
    round_trip(box_a, console, "gatebox/siteA/box1/heartbeat", "still here")
    assert box_a.connects == [False] and box_a.disconnects == []
    assert len(console.connects) == 1 and console.disconnects == []
    log = (secure_broker.workdir / "mosquitto.log").read_text()
    assert "Client gatebox-siteA-box1 already connected" not in log
    assert f"Client {CONSOLE_ID} already connected" not in log


def test_the_centre_s_tools_share_its_login_without_kicking_the_console(
    secure_broker: Mosquitto, certificates: Certificates, clients: list[Client]
) -> None:
    """`centre watch`, `centre ack` and `centre lists publish` connect with the centre's login (and
    an id the broker picks) while the console is connected: on the centre's listener they coexist,
    and the console's persistent session (keyed on its client id) keeps what arrives while it is away."""
    ca = certificates.ca
    console = Client(secure_broker, ca, "centre", client_id=CONSOLE_ID, centre=True, clean_session=False,
                     subscribe="gatebox/#")  # fmt: skip
    watch = Client(secure_broker, ca, "centre", centre=True, subscribe="gatebox/+/+/alert")
    box = Client(secure_broker, ca, "siteA/box1", client_id="gatebox-siteA-box1")
    clients += [watch, box]
    round_trip(box, console, "gatebox/siteA/box1/alert", '{"n": 1}')
    wait_for(lambda: watch.payloads("gatebox/siteA/box1/alert") == [b'{"n": 1}'], 10, "watch to get the alert")
    assert len(console.connects) == 1 and console.disconnects == [] and watch.disconnects == []

    console.close()  # the console restarts; the box goes on sending
    box.publish("gatebox/siteA/box1/alert", '{"n": 2}')
    back = Client(secure_broker, ca, "centre", client_id=CONSOLE_ID, centre=True, clean_session=False)
    clients.append(back)
    assert back.connects == [True]  # the session survived, subscriptions included
    wait_for(lambda: back.payloads("gatebox/siteA/box1/alert") == [b'{"n": 2}'], 10, "the queued alert")


def test_a_box_reads_only_its_own_commands_and_receipts_and_the_lists(
    secure_broker: Mosquitto, certificates: Certificates, clients: list[Client]
) -> None:
    ca = certificates.ca
    spy = Client(secure_broker, ca, "siteB/box2", subscribe="#")
    box_a = Client(secure_broker, ca, "siteA/box1")
    centre = Client(secure_broker, ca, "centre", centre=True)
    clients += [spy, box_a, centre]
    box_a.publish("gatebox/siteA/box1/alert", "A's alert")
    for box in ("siteA/box1", "siteB/box2"):
        centre.publish(f"gatebox/{box}/cmd", f"cmd for {box}")
        centre.publish(f"gatebox/{box}/receipt", f"receipt for {box}")
    centre.publish("gatebox/lists/watchlist/full/manifest", "manifest", retain=True)
    wait_for(lambda: spy.payloads("gatebox/lists/watchlist/full/manifest") == [b"manifest"], 10, "the manifest")
    assert sorted(m.topic for m in spy.messages) == [
        "gatebox/lists/watchlist/full/manifest", "gatebox/siteB/box2/cmd", "gatebox/siteB/box2/receipt"
    ]  # fmt: skip


def worst_panic_payload() -> bytes:
    """A panic whose camera view is the largest the box makes: a PANIC_SNAPSHOT_MAX_SIDE square of
    noise (JPEG cannot compress it; a real view is 15-65 kB in base64)."""
    noise = np.random.default_rng(0).integers(0, 256, (PANIC_SNAPSHOT_MAX_SIDE,) * 2 + (3,), dtype=np.uint8)
    view = base64.b64encode(jpeg_snapshot(noise, PANIC_SNAPSHOT_MAX_SIDE, quality=75)).decode()
    return json.dumps({"schema": "gatebox.panic/1", "event_id": "p1", "view_jpeg_b64": view}).encode()


def test_everything_legitimate_fits_under_the_size_limit(
    secure_broker: Mosquitto, certificates: Certificates, clients: list[Client]
) -> None:
    ca = certificates.ca
    centre = Client(secure_broker, ca, "centre", centre=True, subscribe="gatebox/+/+/panic")
    box = Client(secure_broker, ca, "siteA/box1", client_id="gatebox-siteA-box1", subscribe="gatebox/lists/#")
    clients += [centre, box]
    panic = worst_panic_payload()
    chunk = np.random.default_rng(1).integers(0, 256, CHUNK_BYTES, dtype=np.uint8).tobytes()
    assert 200_000 < len(panic) < MESSAGE_SIZE_LIMIT
    box.publish("gatebox/siteA/box1/panic", panic)
    centre.publish("gatebox/lists/watchlist/full/7/0", chunk, retain=True)
    wait_for(lambda: centre.payloads("gatebox/siteA/box1/panic") == [panic], 10, "the panic")
    wait_for(lambda: box.payloads("gatebox/lists/watchlist/full/7/0") == [chunk], 10, "the list chunk")


@pytest.mark.parametrize(
    ("size", "cut_off"),
    [(MESSAGE_SIZE_LIMIT + 1, False), (MAX_PACKET_SIZE + 1, True), (20 * 1024 * 1024, True)],
    ids=["over-message-limit", "over-packet-limit", "20MB"],
)
def test_an_oversize_publish_from_a_box_is_dropped(
    secure_broker: Mosquitto, certificates: Certificates, clients: list[Client], size: int, cut_off: bool
) -> None:
    """Over message_size_limit the broker acknowledges and drops the message; over max_packet_size
    it closes the connection as soon as it reads the packet's length, before buffering it."""
    ca = certificates.ca
    centre = Client(secure_broker, ca, "centre", centre=True, subscribe="gatebox/+/+/alert")
    box = Client(secure_broker, ca, "siteB/box2", client_id="gatebox-siteB-box2")
    clients += [centre, box]
    topic = "gatebox/siteB/box2/alert"
    huge = json.dumps({"event_id": "huge", "snapshot_jpeg_b64": "A" * size}).encode()
    box.client.publish(topic, huge, qos=1)
    if cut_off:
        wait_for(lambda: bool(box.disconnects), 10, "the broker to close the box's connection")
        box.close()  # else paho sends it again on reconnecting, and is cut off again
        box = Client(secure_broker, ca, "siteB/box2", client_id="gatebox-siteB-box2")
        clients.append(box)
    round_trip(box, centre, topic, '{"event_id": "normal"}')
    assert [json.loads(p)["event_id"] for p in centre.payloads(topic)] == ["normal"]
    assert box.disconnects == []


def test_a_revoked_box_is_cut_off_on_reload(
    secure_broker: Mosquitto, certificates: Certificates, clients: list[Client]
) -> None:
    """README: `mosquitto_passwd -D FILE SITE/BOX_ID`, then reload mosquitto."""
    box = Client(secure_broker, certificates.ca, "siteB/box2", client_id="gatebox-siteB-box2")
    clients.append(box)
    secure_broker.delete_login("siteB/box2")
    secure_broker.reload()
    wait_for(lambda: bool(box.disconnects), 10, "the broker to drop the revoked box")
    wait_for(lambda: bool(box.failures), 10, "the box's reconnection to be refused")
    assert box.connects == [False]


def test_an_oversize_packet_is_refused_before_login(secure_broker: Mosquitto, certificates: Certificates) -> None:
    """A CONNECT announcing 2 MB (no login yet): closed on reading its length, nothing buffered."""
    context = ssl.create_default_context(cafile=str(certificates.ca))
    raw = socket.create_connection(("127.0.0.1", secure_broker.port), timeout=5)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        length = 2_000_000  # MQTT's remaining length, 7 bits a byte
        varint = bytes([0x80 | (length & 0x7F), 0x80 | (length >> 7 & 0x7F), length >> 14])
        tls.sendall(b"\x10" + varint + b"\x00\x04MQTT\x04\x02\x00\x3c")
        assert tls.recv(4) == b""  # closed, no CONNACK
    wait_for(lambda: "disconnected due to oversize packet" in (secure_broker.workdir / "mosquitto.log").read_text(),
             5, "the broker's log line")  # fmt: skip


def test_the_shipped_configs_use_the_right_listeners() -> None:
    """Boxes use the listener that pins client ids to logins; the centre's config the loopback one."""
    listeners: dict[str, list[str]] = {}
    for line in (REPO / "config" / "mosquitto" / "gatebox.conf").read_text().splitlines():
        if line.startswith("listener "):
            current = listeners.setdefault(line.split(" ", 1)[1], [])
        elif line and not line.startswith("#") and listeners:
            current.append(line)
    assert set(listeners) == {"8883", "8884 127.0.0.1"}
    assert "use_username_as_clientid true" in listeners["8883"]
    assert "use_username_as_clientid true" not in listeners["8884 127.0.0.1"]
    assert load_config(REPO / "config" / "centre.yaml").broker.port == 8884
    for profile in ("x86", "raspberry-pi", "jetson"):
        assert load_config(REPO / "config" / f"{profile}.yaml").broker.port == 8883
