"""`Delivery` (edge/comms/delivery.py), in this process over an `InMemoryLink`: a message's type gives its
topic, priority and whether it needs the centre's receipt; an alert's priority follows its list's kind
(not its name); receipts and PUBACKs empty the outbox; a broken link is survived."""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge.comms.delivery import Delivery
from edge.comms.link import InMemoryBroker, InMemoryLink
from edge.comms.outbox import Outbox, Priority
from edge.config import GateboxConfig
from edge.protocol.alert import Alert
from edge.protocol.messages import AlertState, Heartbeat, ListAck, Passage
from edge.protocol.panic import DeviceNotice, PanicEvent
from tests.support.alerts import sample_alert
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
LISTS = {"watchlist": "alert", "lost_residents": "urgent", "wanderers": "leaving-only", "cars": "plates"}
CONFIG = GateboxConfig.model_validate({"box": {"site": "s1", "box_id": "b1"}, "lists": LISTS,
                                       "link": {"resend_after_s": 1}})  # fmt: skip


def alert(event_id: str, list_name: str = "watchlist") -> Alert:
    return sample_alert(event_id, list_name).model_copy(update={"site": "s1", "box_id": "b1"})


def panic(sequence: int = 1) -> PanicEvent:
    return PanicEvent(event_id="p1", message_id=f"p1:{sequence}", kind="panic", device_id="btn-1", pressed_at=NOW,
                      received_at=NOW, sequence=sequence, presses=sequence, site="s1", box_id="b1")  # fmt: skip


REPORTS = {
    "alert_state": AlertState(event_id="a1", state="acked", by="op", ts=1.0),
    "list_ack": ListAck(list="watchlist", version=3, entries=12, ts=1.0),
    "device": DeviceNotice(kind="low_battery", device_id="btn-1", detail="5%", ts=NOW, site="s1", box_id="b1"),
    "passage": Passage(site="s1", box_id="b1", camera="gate", ts=1.0, plate="粤B12345", direction="in"),
}


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    outbox = Outbox(tmp_path / "outbox.sqlite3", 10**8)
    yield outbox
    outbox.close()


@pytest.mark.parametrize(
    ("message", "leaf", "priority", "needs_receipt", "event_id"),
    [
        (panic(2), "panic", Priority.PANIC, True, "p1:2"),  # the receipt names the message, not the event
        (alert("a1"), "alert", Priority.ALERT, True, "a1"),
        (alert("a2", "lost_residents"), "alert", Priority.URGENT_ALERT, True, "a2"),
        (alert("a3", "wanderers"), "alert", Priority.URGENT_ALERT, True, "a3"),
        (alert("a4", "cars"), "alert", Priority.ALERT, True, "a4"),
        (alert("a5", "missing_elders"), "alert", Priority.ALERT, True, "a5"),  # not configured here: no rule by name
        *((report, leaf, Priority.OTHER, False, None) for leaf, report in REPORTS.items()),
    ],
)  # fmt: skip
def test_each_message_type_has_its_topic_priority_and_receipt(
    outbox: Outbox, message: object, leaf: str, priority: Priority, needs_receipt: bool, event_id: str | None
) -> None:
    addressed = Delivery(CONFIG, outbox).address(message)  # type: ignore[arg-type]
    assert (addressed.topic, addressed.priority, addressed.needs_receipt) == (f"gatebox/s1/b1/{leaf}", priority,
                                                                              needs_receipt)  # fmt: skip
    assert addressed.event_id == event_id if event_id else addressed.event_id.startswith(f"{leaf}-")
    assert json.loads(addressed.payload)["schema"].startswith("gatebox.")


def test_an_old_config_keeps_its_urgent_lists_urgent(outbox: Outbox) -> None:
    delivery = Delivery(GateboxConfig(), outbox)
    assert [delivery.address(alert("x", name)).priority for name in ("watchlist", "missing_elders", "at_risk_elders")
            ] == [Priority.ALERT, Priority.URGENT_ALERT, Priority.URGENT_ALERT]  # fmt: skip


def test_what_is_not_a_message_for_the_centre_is_refused(outbox: Outbox) -> None:
    with pytest.raises(TypeError, match="not a message for the centre"):
        Delivery(CONFIG, outbox).address(GateboxConfig())


@dataclass
class Wire:
    broker: InMemoryBroker
    delivery: Delivery
    outbox: Outbox
    received: list[tuple[str, dict]]
    receipts: bool = True

    def leaves(self) -> list[str]:
        return [topic.rsplit("/", 1)[1] for topic, _ in self.received]


@pytest.fixture
def wire(outbox: Outbox) -> Iterator[Wire]:
    """A box's delivery and a centre, over an in-memory broker; the centre confirms alerts and panics."""
    broker = InMemoryBroker()
    centre = InMemoryLink(broker, "centre")
    box_link = InMemoryLink(broker, "box", "gatebox/s1/b1/availability")
    delivery = Delivery(CONFIG, outbox, box_link)
    wire = Wire(broker, delivery, outbox, [])

    def on_message(topic: str, payload: bytes) -> None:
        if topic.endswith(("/availability", "/receipt")):  # the box's presence; the centre's own receipts
            return
        body = json.loads(payload)
        wire.received.append((topic, body))
        if wire.receipts and topic.endswith(("/alert", "/panic")):
            receipt = {"event_ids": [body.get("message_id") or body["event_id"]]}
            centre.publish("gatebox/s1/b1/receipt", json.dumps(receipt))

    centre.route("gatebox/s1/b1/+", on_message)
    centre.start()
    delivery.start()
    box_link.start()
    assert box_link.wait_connected(5)
    yield wire
    delivery.close()
    box_link.close()
    centre.close()


def test_alerts_stay_until_the_centre_confirms_them_and_reports_leave_on_puback(wire: Wire) -> None:
    wire.receipts = False
    wire.delivery.send(alert("a1"))
    wire.delivery.send(REPORTS["list_ack"])
    wait_for(lambda: sorted(wire.leaves()) == ["alert", "list_ack"], 5, "both sent")
    wait_for(lambda: wire.outbox.stats().depth == 1, 5, "the list ack to leave on its PUBACK")
    assert wire.outbox.contains("a1")
    wire.receipts = True  # the alert is sent again (`resend_after_s`) and now confirmed
    wait_for(lambda: wire.outbox.stats().depth == 0, 10, "the alert to be confirmed")
    first = wire.received[0][1]
    assert first["event_id"] == "a1" and first["age_s"] >= 0 and first["sent_at"]  # stamped on sending


def test_a_heartbeat_is_best_effort_never_queued(wire: Wire) -> None:
    wire.delivery.send(Heartbeat(site="s1", box_id="b1", ts=time.time()))
    wait_for(lambda: wire.leaves() == ["heartbeat"], 5, "the heartbeat")
    wire.broker.stop()
    wait_for(lambda: not wire.delivery.link.connected, 5, "the outage")  # type: ignore[union-attr]
    wire.delivery.send(Heartbeat(site="s1", box_id="b1", ts=time.time()))
    assert wire.outbox.stats().depth == 0  # dropped: the next one says more


def test_after_an_outage_everything_arrives_panics_first(wire: Wire) -> None:
    wire.broker.stop()
    wait_for(lambda: not wire.delivery.link.connected, 5, "the outage")  # type: ignore[union-attr]
    wire.delivery.send(REPORTS["device"])
    wire.delivery.send(alert("w1"))
    wire.delivery.send(alert("u1", "lost_residents"))
    wire.delivery.send(panic())
    wire.broker.start()
    wait_for(lambda: wire.outbox.stats().depth == 0, 10, "everything delivered")
    assert wire.leaves() == ["panic", "alert", "alert", "device"]
    assert [body.get("event_id") for _, body in wire.received[1:3]] == ["u1", "w1"]


def test_a_receipt_that_is_not_one_is_refused_and_counted(wire: Wire, outbox: Outbox) -> None:
    centre = InMemoryLink(wire.broker, "intruder")
    centre.start()
    assert centre.wait_connected(5)
    try:
        centre.publish("gatebox/s1/b1/receipt", b'{"event_ids": []}')
        centre.publish("gatebox/s1/b1/receipt", b"[" * 100 + b"]" * 100)
        link = wire.delivery.link
        wait_for(lambda: dict(link.bad_input) == {"invalid_receipt": 1, "too_deep": 1}, 5, "both refused")  # type: ignore[union-attr]
    finally:
        centre.close()


def test_comms_imports_nothing_of_lists() -> None:
    """The link routes list topics to whoever registered for them: comms does not know list sync."""
    for path in (REPO / "edge" / "comms").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith("edge.lists")], path
