"""Integrations for other tools on the broker (issue 17, the integrator), in process over `InMemoryLink`s: Home
Assistant device discovery (retained, under the box's own login in the topic, entities reading the box's own
topics) and a Frigate-style `events` topic (new → update → end for an alert acknowledged, then closed); both
off by default."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pytest

from edge.box import Box
from edge.comms.link import InMemoryBroker, InMemoryLink
from edge.config import GateboxConfig
from edge.health import CameraStatus, heartbeat
from edge.protocol.messages import AckAlert, AlertEvent, HaDeviceDiscovery
from tests.support.alerts import sample_alert
from tests.support.waiting import wait_for

DISCOVERY_TOPIC = "homeassistant/device/s1/b1/config"
EVENTS_TOPIC = "gatebox/s1/b1/events"


def config(**integrations: object) -> GateboxConfig:
    return GateboxConfig.model_validate({
        "box": {"site": "s1", "box_id": "b1"},
        "cameras": [{"name": "west", "url": "rtsp://cam/west"}, {"name": "east", "url": "rtsp://cam/east"}],
        "integrations": integrations,
    })  # fmt: skip


class Wire:
    """One broker, a box on it, and a listener on every topic (as Home Assistant or Frigate tools listen)."""

    def __init__(self, box_config: GateboxConfig, data_dir: Path) -> None:
        self.broker = InMemoryBroker()
        self.seen: list[tuple[str, bytes]] = []
        self.listener = InMemoryLink(self.broker, "tool")
        self.listener.route("#", lambda topic, payload: self.seen.append((topic, payload)))
        self.listener.start()
        self.box = Box(box_config, data_dir, link=InMemoryLink(self.broker, "box", "gatebox/s1/b1/availability"))

    def on(self, topic: str) -> list[bytes]:
        return [payload for t, payload in self.seen if t == topic]

    def ack(self, event_id: str, state: Literal["acked", "closed"]) -> None:
        self.box.alerts.apply_ack(AckAlert(command="ack_alert", event_id=event_id, state=state, by="op7",
                                           issued_at=datetime.now(timezone.utc)))  # fmt: skip

    def close(self) -> None:
        self.box.close()
        self.listener.close()


MakeWire = Callable[[GateboxConfig], Wire]


@pytest.fixture
def wire_factory(tmp_path: Path) -> Iterator[Callable[[GateboxConfig], Wire]]:
    made: list[Wire] = []

    def make(box_config: GateboxConfig) -> Wire:
        made.append(Wire(box_config, tmp_path / f"box{len(made)}"))
        return made[-1]

    yield make
    for wire in made:
        wire.close()


def test_discovery_is_retained_under_the_boxs_own_login_and_reads_the_boxs_topics(
    wire_factory: Callable[[GateboxConfig], Wire],
) -> None:
    wire = wire_factory(config(home_assistant={"enabled": True}))
    wait_for(lambda: wire.on(DISCOVERY_TOPIC), 10, "the discovery config")
    payload = wire.on(DISCOVERY_TOPIC)[0]
    assert b"null" not in payload  # Home Assistant refuses null for an option
    found = HaDeviceDiscovery.model_validate_json(payload)
    assert found.device.identifiers == ["gatebox_s1_b1"]
    by_id = found.components
    assert set(by_id) == {"gatebox_s1_b1_online", "gatebox_s1_b1_last_alert", "gatebox_s1_b1_camera_west",
                          "gatebox_s1_b1_camera_east"}  # fmt: skip
    assert all(uid == c.unique_id for uid, c in by_id.items())
    online = by_id["gatebox_s1_b1_online"]
    assert (online.platform, online.state_topic, online.payload_on, online.payload_off, online.device_class) == (
        "binary_sensor", "gatebox/s1/b1/availability", "online", "offline", "connectivity")  # fmt: skip
    west = by_id["gatebox_s1_b1_camera_west"]
    assert (west.platform, west.state_topic, west.availability_topic) == ("sensor", "gatebox/s1/b1/heartbeat",
                                                                         "gatebox/s1/b1/availability")  # fmt: skip
    assert "cameras['west'].fps" in (west.value_template or "")
    last = by_id["gatebox_s1_b1_last_alert"]
    assert last.state_topic == last.json_attributes_topic == "gatebox/s1/b1/alert"
    # The templates read fields the box's own messages carry.
    beat = heartbeat(wire.box, [CameraStatus("west"), CameraStatus("east")], time.monotonic())
    assert "fps" in beat.model_dump()["cameras"]["west"]
    for field in ("subject_name", "subject_id", "list", "kind", "camera", "ts", "event_id"):
        assert f"value_json.{field}" in (last.value_template or "") + (last.json_attributes_template or "")
        assert field in sample_alert("x").model_dump()
    # Retained: a tool that subscribes later gets it; and the same ids after every reconnect.
    late: list[bytes] = []
    tool = InMemoryLink(wire.broker, "late")
    tool.route("homeassistant/#", lambda _topic, p: late.append(p))
    tool.start()
    try:
        wait_for(lambda: late, 10, "the retained discovery config")
        assert late[0] == payload
    finally:
        tool.close()
    wire.broker.stop()
    wire.broker.start()
    wait_for(lambda: len(wire.on(DISCOVERY_TOPIC)) >= 2, 10, "the config again after the reconnect")
    assert set(HaDeviceDiscovery.model_validate_json(wire.on(DISCOVERY_TOPIC)[-1]).components) == set(by_id)


def test_the_discovery_prefix_is_configurable(wire_factory: MakeWire) -> None:
    wire = wire_factory(config(home_assistant={"enabled": True, "discovery_prefix": "ha"}))
    wait_for(lambda: wire.on("ha/device/s1/b1/config"), 10, "the discovery config under ha/")


def test_an_alert_acked_then_closed_is_new_update_end_on_the_events_topic(
    wire_factory: Callable[[GateboxConfig], Wire],
) -> None:
    wire = wire_factory(config(events={"enabled": True}))
    alert = sample_alert("e-1", subject_name="Li Xiulan").model_copy(update={"site": "s1", "box_id": "b1"})
    wire.box.alerts.emit(alert)
    wire.ack("e-1", "acked")
    wire.ack("e-1", "closed")
    wait_for(lambda: len(wire.on(EVENTS_TOPIC)) >= 3, 10, "three events")
    events = [AlertEvent.model_validate_json(p) for p in wire.on(EVENTS_TOPIC)]
    assert [e.type for e in events] == ["new", "update", "end"]
    new, update, end = events
    assert new.before == new.after
    assert (new.after.id, new.after.camera, new.after.label, new.after.sub_label, new.after.list) == (
        "e-1", "gate", "person", "Li Xiulan", "watchlist")  # fmt: skip
    assert new.after.start_time == alert.ts.timestamp() and new.after.end_time is None
    assert (update.before.state, update.after.state, update.after.acked_by) == ("new", "acked", "op7")
    assert (end.before.state, end.after.state) == ("acked", "closed")
    assert end.after.end_time is not None and end.after.end_time >= end.after.start_time
    assert {e.after.id for e in events} == {"e-1"}
    assert json.loads(wire.on(EVENTS_TOPIC)[0])["after"]["label"] == "person"


def test_both_are_off_by_default(wire_factory: MakeWire) -> None:
    wire = wire_factory(config())
    wire.box.alerts.emit(sample_alert("e-1").model_copy(update={"site": "s1", "box_id": "b1"}))
    wire.ack("e-1", "acked")
    wire.ack("e-1", "closed")
    wait_for(lambda: len(wire.on("gatebox/s1/b1/alert_state")) >= 2 and wire.on("gatebox/s1/b1/alert"), 10,
             "the alert and its states")  # fmt: skip
    assert not [t for t, _ in wire.seen if t.startswith("homeassistant/") or t == EVENTS_TOPIC]


def test_panics_acked_make_no_alert_events(wire_factory: MakeWire) -> None:
    wire = wire_factory(config(events={"enabled": True}))
    wire.box.states.record_event("p-1", "panic", "panic", "btn-1", "gate", datetime.now(timezone.utc).isoformat())
    wire.ack("p-1", "acked")
    wait_for(lambda: wire.on("gatebox/s1/b1/alert_state"), 10, "the panic's state")
    assert wire.on(EVENTS_TOPIC) == []
