"""District brokers bridged to the centre's broker (issue 19, part 1), with real mosquitto processes
run from the shipped templates (config/mosquitto/district.conf, centre-bridges.conf, acl-district):
what boxes send crosses the TLS bridge up and the centre's commands, receipts and lists come down,
and a district's bridge login can write only its own sites' box-to-centre topics."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.bridge import BridgeAuthority, CentreBroker, ClientCertificate, DistrictBroker, certificates
from tests.support.broker import find_mosquitto
from tests.support.mqtt import Collector
from tests.support.tls import Certificates
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

CENTRE_PASSWORD = "centre-pw"
BOX, BOX_PASSWORD = "site-n1/box1", "box1-pw"  # a box of the north district
DISTRICTS = {"north": ["site-n1", "site-n2"], "south": ["site-s1"]}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certificates, BridgeAuthority]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; ./scripts/test installs it when run as root")
    return certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def centre(tmp_path: Path, tls: tuple[Certificates, BridgeAuthority]) -> Iterator[CentreBroker]:
    server, bridges = tls
    broker = CentreBroker(tmp_path / "centre", server, bridges, {"centre": CENTRE_PASSWORD}, DISTRICTS).start()
    yield broker
    broker.stop()


@pytest.fixture
def north(tmp_path: Path, tls: tuple[Certificates, BridgeAuthority], centre: CentreBroker) -> Iterator[DistrictBroker]:
    server, bridges = tls
    district = DistrictBroker(tmp_path / "north", "north", DISTRICTS["north"], centre, server, bridges.issue("north"),
                              passwords={BOX: BOX_PASSWORD})  # fmt: skip
    district.start()
    yield district
    district.stop()


def centre_side(centre: CentreBroker, ca: Path, *topics: str) -> Collector:
    """A subscriber of the centre's own (the console's login, on its listener)."""
    return Collector(centre.centre_port, *topics, username="centre", password=CENTRE_PASSWORD, ca=str(ca))


def box_side(district: DistrictBroker, ca: Path) -> Collector:
    """Box site-n1/box1 on its district's broker, subscribed as a box is: its commands and receipts, the lists."""
    return Collector(district.port, "gatebox/site-n1/box1/cmd", "gatebox/site-n1/box1/receipt", "gatebox/lists/#",
                     username=BOX, password=BOX_PASSWORD, ca=str(ca))  # fmt: skip


def wait_bridged(box: Collector, centre: Collector) -> None:
    """Until a heartbeat from the box crosses the bridge (the link is up and subscribed both ways:
    the bridge subscribes at the centre before it sends what waited for it)."""
    topic = "gatebox/site-n1/box1/heartbeat"

    def crossed() -> bool:
        box.client.publish(topic, "probe", qos=1)
        try:
            centre.next(0.5, topic_suffix="/heartbeat")
        except TimeoutError:
            return False
        return True

    wait_for(crossed, 30, "the district's bridge to the centre")
    centre.received()  # later probes


@contextmanager
def bridged_box(centre: CentreBroker, district: DistrictBroker, ca: Path) -> Iterator[tuple[Collector, Collector]]:
    """(box on the district, the centre's subscriber to everything) once the bridge carries the box's messages."""
    watch = centre_side(centre, ca, "gatebox/#")
    box = box_side(district, ca)
    try:
        wait_bridged(box, watch)
        yield box, watch
    finally:
        box.close()
        watch.close()


def test_a_box_s_alert_crosses_the_tls_bridge_up_and_commands_receipts_and_lists_come_down(
    tls: tuple[Certificates, BridgeAuthority], centre: CentreBroker, north: DistrictBroker
) -> None:
    server, _ = tls
    with bridged_box(centre, north, server.ca) as (box, watch):
        alert = json.dumps({"event_id": "e-1"})
        box.client.publish("gatebox/site-n1/box1/alert", alert, qos=1).wait_for_publish(10)
        got = watch.next(10, topic_suffix="/alert")
        assert (got.topic, got.payload) == ("gatebox/site-n1/box1/alert", alert.encode())

        down = {
            "gatebox/site-n1/box1/cmd": b"signed command",
            "gatebox/site-n1/box1/receipt": b'{"event_ids": ["e-1"]}',
            "gatebox/lists/watchlist/full/manifest": b"signed manifest",
        }
        for topic, payload in down.items():
            watch.client.publish(topic, payload, qos=1, retain=topic.startswith("gatebox/lists/")).wait_for_publish(10)
        arrived = {m.topic: m.payload for m in [box.next(10) for _ in down]}
        assert arrived == down
        # What came down is never sent back up (the centre's ACL would refuse it: a denied publish in its
        # log). An echo would leave the district on the bridge before the box's next message does.
        box.client.publish("gatebox/site-n1/box1/heartbeat", "barrier", qos=1)
        seen = watch.until(lambda m: m.payload == b"barrier", 10, "the box's next message")
        assert sorted(m.topic for m in seen) == sorted([*down, "gatebox/site-n1/box1/heartbeat"])
        assert "Denied PUBLISH" not in (centre.workdir / "mosquitto.log").read_text()


def test_a_box_that_starts_during_a_cut_gets_the_lists_the_district_kept(
    tls: tuple[Certificates, BridgeAuthority], centre: CentreBroker, north: DistrictBroker
) -> None:
    """The lists are retained at the district too: a box starting while the centre is away gets them."""
    server, _ = tls
    with bridged_box(centre, north, server.ca) as (box, watch):
        watch.client.publish("gatebox/lists/watchlist/full/manifest", b"v7", qos=1, retain=True).wait_for_publish(10)
        assert box.next(10, topic_suffix="/manifest").payload == b"v7"
    centre.stop()
    late = box_side(north, server.ca)
    try:
        retained = late.next(10, topic_suffix="/manifest")
        assert (retained.payload, retained.retain) == (b"v7", True)
    finally:
        late.close()


class Bridge:
    """A client holding a district's bridge certificate, as a compromised district would use it."""

    def __init__(self, centre: CentreBroker, server_ca: Path, certificate: ClientCertificate | None) -> None:
        self.refused: list[str] = []
        self.connected = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anything", protocol=mqtt.MQTTv311)
        self.client.tls_set(ca_certs=str(server_ca), certfile=str(certificate.cert) if certificate else None,
                            keyfile=str(certificate.key) if certificate else None,
                            tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", centre.bridge_port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        self.connected = True

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Acknowledged whether or not the ACL let it through (mosquitto PUBACKs a denied publish)."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_district_s_bridge_login_writes_only_its_own_sites_box_to_centre_topics(
    tls: tuple[Certificates, BridgeAuthority], centre: CentreBroker
) -> None:
    server, bridges = tls
    watch = centre_side(centre, server.ca, "gatebox/#")
    south_box = Collector(centre.centre_port, "gatebox/site-s1/box9/cmd", username="centre",
                          password=CENTRE_PASSWORD, ca=str(server.ca))  # fmt: skip
    north = Bridge(centre, server.ca, bridges.issue("north"))
    try:
        wait_for(lambda: north.connected, 10, "the north bridge login to connect")
        forged = {
            "gatebox/site-s1/box9/alert": b"another district's site",
            "gatebox/site-x/box9/panic": b"a site of no district",
            "gatebox/site-n1/box1/cmd": b"a command",
            "gatebox/site-s1/box9/cmd": b"a command for another district",
            "gatebox/site-n1/box1/receipt": b'{"event_ids": ["e-1"]}',
            "gatebox/site-n1/box1/unknown_leaf": b"not a box-to-centre kind",
        }
        for topic, payload in forged.items():
            north.publish(topic, payload)
        north.publish("gatebox/lists/watchlist/full/manifest", b"a forged list", retain=True)
        for leaf in ("alert", "panic", "alert_state", "heartbeat", "availability", "list_ack", "device", "passage"):
            north.publish(f"gatebox/site-n2/box3/{leaf}", b"allowed")
        north.publish("gatebox/site-n1/box1/alert", b"barrier")
        seen = watch.until(lambda m: m.payload == b"barrier", 10, "the north bridge's own alert")
        assert [m.topic.rsplit("/", 1)[-1] for m in seen] == [
            "alert", "panic", "alert_state", "heartbeat", "availability", "list_ack", "device", "passage", "alert",
        ]  # fmt: skip
        assert all(m.topic.startswith(("gatebox/site-n2/box3/", "gatebox/site-n1/box1/alert")) for m in seen)
        assert south_box.received() == []
        fresh = centre_side(centre, server.ca, "gatebox/lists/#")  # a retained forged list would arrive at once
        try:
            watch.client.publish("gatebox/lists/barrier", b"end", qos=1).wait_for_publish(10)
            assert [m.payload for m in fresh.until(lambda m: m.payload == b"end", 10, "the end mark")] == [b"end"]
        finally:
            fresh.close()
    finally:
        north.close()
        south_box.close()
        watch.close()


@pytest.mark.parametrize("certificate", ["none", "server's"])
def test_no_one_without_a_bridge_certificate_gets_onto_the_bridges_listener(
    tls: tuple[Certificates, BridgeAuthority], centre: CentreBroker, certificate: str
) -> None:
    """No client certificate, or one from another CA (here the brokers' own server certificate): the TLS
    handshake fails, so there is no login to try."""
    server, _ = tls
    held = None if certificate == "none" else ClientCertificate(server.server_cert, server.server_key)
    with pytest.raises((ssl.SSLError, OSError)):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.tls_set(ca_certs=str(server.ca), certfile=str(held.cert) if held else None,
                       keyfile=str(held.key) if held else None)  # fmt: skip
        client.connect("127.0.0.1", centre.bridge_port)
        for _ in range(20):  # the server's refusal arrives with the first read (TLS 1.3 sends it after Finished)
            if client.loop(0.2) != mqtt.MQTT_ERR_SUCCESS:
                raise OSError("refused")
