"""The `Link` contract (edge/comms/link.py), run against both implementations: `InMemoryLink` in this
process, and `PahoLink` against a real mosquitto (marked slow). Whatever passes here may stand in for
the other in a test of the box."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edge.comms.link import InMemoryBroker, InMemoryLink, Link, PahoLink, Refused
from edge.protocol.mqtt import BrokerConfig
from tests.support.broker import Mosquitto, find_mosquitto
from tests.support.waiting import wait_for


@dataclass
class World:
    """Links on one broker, and that broker's outages."""

    make: Callable[[str, str | None], Link]  # (client id, presence topic)
    stop_broker: Callable[[], None]
    start_broker: Callable[[], object]
    links: list[Link] = field(default_factory=list)

    def link(self, name: str, presence: str | None = None) -> Link:
        link = self.make(name, presence)
        self.links.append(link)
        return link


@pytest.fixture(params=["memory", pytest.param("paho", marks=pytest.mark.slow)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "memory":
        broker = InMemoryBroker()
        world = World(lambda name, presence: InMemoryLink(broker, name, presence), broker.stop, broker.start)
    else:
        if find_mosquitto() is None:
            pytest.skip("mosquitto is not installed")
        server = Mosquitto(tmp_path / "mosquitto").start()
        config = BrokerConfig(port=server.port, keepalive_s=5, reconnect_max_s=1)
        world = World(lambda name, presence: PahoLink(config, name, presence), server.stop, server.start)
    yield world
    for link in world.links:
        link.close()
    if request.param == "paho":
        server.stop()


class Inbox:
    """What a handler received, and on which thread."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.threads: set[int] = set()

    def __call__(self, topic: str, payload: bytes) -> None:
        self.threads.add(threading.get_ident())
        self.messages.append((topic, payload))

    def payloads(self) -> list[bytes]:
        return [payload for _, payload in self.messages]


def started(link: Link) -> Link:
    link.start()
    assert link.wait_connected(10), "never connected"
    return link


def test_a_message_reaches_the_handler_routed_for_its_topic_off_the_senders_thread(world: World) -> None:
    alerts, lists = Inbox(), Inbox()
    receiver = world.link("receiver")
    receiver.route("t/+/alert", alerts)
    receiver.route("t/lists/#", lists)
    started(receiver)  # connected: its routes are subscribed
    sender = started(world.link("sender"))
    for topic in ("t/box1/alert", "t/lists/watchlist/manifest", "t/box1/other", "t/box2/alert"):
        assert sender.publish(topic, topic.encode(), qos=1)
    wait_for(lambda: len(alerts.messages) == 2 and len(lists.messages) == 1, 10, "the routed messages")
    assert alerts.messages == [("t/box1/alert", b"t/box1/alert"), ("t/box2/alert", b"t/box2/alert")]
    assert lists.messages == [("t/lists/watchlist/manifest", b"t/lists/watchlist/manifest")]
    assert threading.get_ident() not in alerts.threads | lists.threads
    assert len(alerts.threads | lists.threads) == 1  # one dispatch thread runs every handler, in order


def test_a_published_message_is_acknowledged_once_the_broker_has_it(world: World) -> None:
    sender = started(world.link("sender"))
    acked: list[str] = []
    assert sender.publish("t/box1/report", b"{}", qos=1, on_acked=lambda: acked.append("first"))
    assert sender.publish("t/box1/report", b"{}", qos=1, on_acked=lambda: acked.append("second"))
    wait_for(lambda: sorted(acked) == ["first", "second"], 10, "both acknowledgements")


def test_a_retained_message_reaches_a_link_that_connects_later(world: World) -> None:
    sender = started(world.link("sender"))
    done = threading.Event()
    assert sender.publish("t/lists/watchlist/manifest", b"v7", qos=1, retain=True, on_acked=done.set)
    assert done.wait(10)
    inbox = Inbox()
    late = world.link("late")
    late.route("t/lists/#", inbox)
    started(late)
    wait_for(lambda: inbox.payloads() == [b"v7"], 10, "the retained manifest")


def test_presence_is_online_while_connected_and_offline_once_closed(world: World) -> None:
    watcher = world.link("watcher")
    presence = Inbox()
    watcher.route("t/box1/availability", presence)
    started(watcher)
    box = started(world.link("box1", "t/box1/availability"))
    wait_for(lambda: presence.payloads()[-1:] == [b"online"], 10, "online")
    box.close()
    wait_for(lambda: presence.payloads()[-1:] == [b"offline"], 10, "offline")


def test_refused_and_failing_messages_are_counted_and_the_next_one_is_handled(world: World) -> None:
    handled: list[bytes] = []

    def handler(topic: str, payload: bytes) -> None:
        if payload == b"refuse":
            raise Refused("bad_signature", "not signed by the centre")
        if payload == b"raise":
            raise RuntimeError("the handler failed")
        handled.append(payload)

    receiver = world.link("receiver")
    receiver.route("t/box1/cmd", handler)
    started(receiver)
    sender = started(world.link("sender"))
    for payload in (b"refuse", b"raise", b"raise", b"next"):
        sender.publish("t/box1/cmd", payload, qos=1)
    wait_for(lambda: handled == [b"next"], 10, "the message after the bad ones")
    assert dict(receiver.bad_input) == {"bad_signature": 1, "failed": 2}


def test_an_outage_is_reported_and_the_link_comes_back_with_its_routes(world: World) -> None:
    changes: list[bool] = []
    inbox = Inbox()
    receiver = world.link("receiver")
    receiver.on_connection(changes.append)
    receiver.route("t/box1/receipt", inbox)
    started(receiver)
    wait_for(lambda: changes == [True], 10, "the first connection reported")
    world.stop_broker()
    wait_for(lambda: not receiver.connected and changes == [True, False], 10, "the outage to be noticed")
    assert not receiver.publish("t/box1/alert", b"{}", qos=1)  # not handed over: the caller keeps it
    world.start_broker()
    assert receiver.wait_connected(20), "never reconnected"
    wait_for(lambda: changes == [True, False, True], 10, "the reconnection reported")
    sender = started(world.link("sender"))
    sender.publish("t/box1/receipt", b"after", qos=1)
    wait_for(lambda: inbox.payloads() == [b"after"], 10, "a message routed after the outage")


def test_a_periodic_job_runs_on_the_dispatch_thread(world: World) -> None:
    link = world.link("ticking")
    threads: list[int] = []
    link.every(0.05, lambda: threads.append(threading.get_ident()))
    started(link)
    wait_for(lambda: len(threads) >= 3, 10, "three runs of the job")
    assert threading.get_ident() not in threads and len(set(threads)) == 1
