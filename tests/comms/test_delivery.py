"""Nothing lost (issue 4, tests 1-3): real mosquitto restarted or killed under a box that keeps
raising alerts, a box killed while its alerts wait for the broker, and a link cut that ends with
everything arriving, panics first."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.box import mqtt_link
from edge.comms.delivery import Delivery
from edge.comms.outbox import Outbox, OutgoingMessage, Priority
from edge.config import BoxConfig, GateboxConfig, LinkConfig
from edge.protocol.mqtt import BrokerConfig
from tests.conftest import start_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.enrolled import EnrolledData
from tests.support.mqtt import Collector
from tests.support.waiting import wait_for

# Alert on every sighting: a new track each detection pass, one matching look is enough, no
# cooldown. It turns the 105-frame crowd clip into ~58 alerts.
EVERY_SIGHTING = {
    "recognition": {"min_matching_frames": 1, "subject_cooldown_s": 0, "strong_distance": 0.5,
                    "max_embeddings_per_pass": 10, "embeddings_per_second": 1000,
                    "operating_points": {"watchlist": {}, "missing_elders": {}}},
    "tracking": {"max_missed": 3, "iou_threshold": 0.999},
}  # fmt: skip


def event_ids(events: Path) -> list[str]:
    if not events.exists():
        return []
    return [json.loads(line)["event_id"] for line in events.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory, enrolled_data: EnrolledData) -> Path:
    return enrolled_data.copy(tmp_path_factory.mktemp("delivery") / "box")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "mosquitto").start()
    yield server
    server.stop()


def box_config(path: Path, port: int, box_id: str, **extra: object) -> Path:
    return write_config(
        path,
        box={"site": "s1", "box_id": box_id},
        broker={"port": port, "keepalive_s": 5, "reconnect_max_s": 1, "flush_timeout_s": 90},
        link={"resend_after_s": 2, "heartbeat_interval_s": 1},
        **EVERY_SIGHTING,
        **extra,
    )


def copy_store(enrolled: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    (target / "lists.sqlite3").write_bytes((enrolled / "lists.sqlite3").read_bytes())
    return target


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_broker_restart_mid_replay_loses_no_alert(
    tmp_path: Path, own_broker: Mosquitto, enrolled: Path, crowd_clip: Path, how: str
) -> None:
    config = box_config(tmp_path / "box.yaml", own_broker.port, f"restart-{how.lower()}")
    data = copy_store(enrolled, tmp_path / "box")
    events = tmp_path / "events.jsonl"
    centre = Collector(own_broker.port, "gatebox/+/+/alert", receipts=True)
    box = start_cli("--config", config, "--data-dir", data, "replay", crowd_clip, "--realtime", "--events", events,
                    log=tmp_path / "box.log")  # fmt: skip
    try:
        wait_for(lambda: len(event_ids(events)) >= 10, 60, "the first alerts")
        own_broker.stop() if how == "SIGTERM" else own_broker.kill()
        raised_before = len(event_ids(events))
        wait_for(lambda: len(event_ids(events)) >= raised_before + 10, 30, "alerts raised while the broker is away")
        own_broker.start()
        assert box.wait(150) == 0, (tmp_path / "box.log").read_text()[-3000:]
        raised = set(event_ids(events))
        received = centre.drain(30, until=raised)
    finally:
        box.kill()
        centre.close()
    distinct = {json.loads(m.payload)["event_id"] for m in received}
    assert len(raised) >= 50
    assert distinct == raised, f"missing {len(raised - distinct)} of {len(raised)}"
    assert "58 alert(s), 58 confirmed by the centre" in (tmp_path / "box.log").read_text() or len(raised) != 58


def test_box_killed_while_broker_down_resends_after_restart(
    tmp_path: Path, own_broker: Mosquitto, enrolled: Path, crowd_clip: Path, shared_data: Path
) -> None:
    parking = shared_data / "video" / "parking_lot_cars.mp4"
    config = box_config(tmp_path / "box.yaml", own_broker.port, "killed",
                        cameras=[{"name": "gate", "url": str(parking)}])  # fmt: skip
    data = copy_store(enrolled, tmp_path / "box")
    events = tmp_path / "events.jsonl"
    centre = Collector(own_broker.port, "gatebox/+/+/alert", receipts=True)
    box = start_cli("--config", config, "--data-dir", data, "replay", crowd_clip, "--events", events,
                    log=tmp_path / "box.log")  # fmt: skip
    try:
        wait_for(lambda: len(event_ids(events)) >= 3, 60, "the first alerts")
        own_broker.stop()
        wait_for(lambda: len(event_ids(events)) >= 25, 60, "alerts queued while the broker is down")
        box.send_signal(signal.SIGKILL)
        box.wait()
        raised = set(event_ids(events))
        restarted = start_cli("--config", config, "--data-dir", data, "run", log=tmp_path / "run.log")
        time.sleep(2)  # the outage itself: the restarted box must come up while the broker is still away
        own_broker.start()
        received = centre.drain(60, until=raised)
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(60) == 0
    finally:
        box.kill()
        centre.close()
    distinct = {json.loads(m.payload)["event_id"] for m in received}
    assert len(raised) >= 25 and distinct >= raised, f"missing {len(raised - distinct)} of {len(raised)}"
    assert "outbox holds" in (tmp_path / "run.log").read_text()


def test_link_cut_then_restored_delivers_everything_in_priority_order(tmp_path: Path, own_broker: Mosquitto) -> None:
    config = GateboxConfig(box=BoxConfig(site="s1", box_id="prio"), link=LinkConfig(resend_after_s=30),
                           broker=BrokerConfig(port=own_broker.port, keepalive_s=5, reconnect_max_s=1))  # fmt: skip
    # The centre keeps a persistent session, so what reaches the broker waits there for it in order.
    centre = Collector(own_broker.port, "gatebox/s1/prio/#", client_id="centre-prio", receipts=True)
    outbox = Outbox(tmp_path / "outbox.sqlite3", 10**8)
    link = mqtt_link(config)
    delivery = Delivery(config, outbox, link)
    delivery.start()
    link.start()
    try:
        assert link.wait_connected(10)
        centre.next(10, "/availability")  # the retained `online`
        own_broker.stop()
        wait_for(lambda: not link.connected, 10, "the link to notice")
        sent = []
        for i in range(30):  # queued while the link is down, low priority first
            for priority, kind in ((Priority.OTHER, "report"), (Priority.ALERT, "alert"), (Priority.PANIC, "panic")):
                if priority is Priority.PANIC and i % 10:
                    continue
                event_id = f"{kind}-{i:02d}"
                outbox.put(OutgoingMessage(event_id, kind, priority, f"gatebox/s1/prio/{kind}",
                                           json.dumps({"event_id": event_id}).encode(), kind != "report"))  # fmt: skip
                sent.append(event_id)
        delivery.wake()
        time.sleep(1)  # the outage itself: the woken link finds no broker before it comes back
        own_broker.start()
        first_seen: dict[str, None] = {}
        deadline = time.monotonic() + 30
        while len(first_seen) < len(sent) and time.monotonic() < deadline:
            for m in centre.drain(0.5):
                if m.topic.rsplit("/", 1)[-1] in ("panic", "alert", "report"):
                    first_seen.setdefault(json.loads(m.payload)["event_id"])
        wait_for(lambda: outbox.stats().depth == 0, 20, "the outbox to empty (receipts and PUBACKs)")
    finally:
        delivery.close()
        link.close()
        centre.close()
    expected = sorted(sent, key=lambda e: ({"panic": 0, "alert": 1, "report": 2}[e.split("-")[0]], e))
    assert list(first_seen) == expected
