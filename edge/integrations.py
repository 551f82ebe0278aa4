"""What the box publishes for other tools on the broker, opt-in (`integrations` in the config).

- Home Assistant: one retained device discovery config (`HaDeviceDiscovery`) at every connect, whose
  entities read the box's own topics: a connectivity binary_sensor on `availability`, a sensor per camera
  on `heartbeat` (fps; connected and counts as attributes) and the last alert on `alert` (the subject; list,
  kind, camera and time as attributes). Home Assistant's user needs read access to `gatebox/#`.
- Frigate-style events (`AlertEvent` on `<prefix>/<site>/<box>/events`): `new` when an alert is raised,
  `update` when the centre acknowledges it, `end` when the centre closes it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from edge.config import GateboxConfig
from edge.health import software_version
from edge.protocol import topics
from edge.protocol.alert import Alert
from edge.protocol.messages import AlertEvent, EventSummary, HaComponent, HaDevice, HaDeviceDiscovery, HaOrigin
from edge.store.alert_states import AlertRecord


def _id(*parts: str) -> str:
    """A unique id Home Assistant accepts (letters, digits, `_`, `-`) from the box's names."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(parts))


def _component(**fields: object) -> HaComponent:
    return HaComponent.model_validate(fields)


def discovery(config: GateboxConfig) -> HaDeviceDiscovery:
    """The box as a Home Assistant device: availability, one sensor per camera, the last alert."""
    box, version = config.box, software_version()
    device_id = _id("gatebox", box.site, box.box_id)
    availability = topics.box_topic(config.broker, box, topics.AVAILABILITY)
    heartbeat = topics.box_topic(config.broker, box, topics.HEARTBEAT)
    alert = topics.box_topic(config.broker, box, topics.ALERT)
    # Every entity but the connectivity one is unavailable while the box is offline.
    while_online = {"availability_topic": availability, "payload_available": topics.ONLINE,
                    "payload_not_available": topics.OFFLINE}  # fmt: skip
    components = [
        _component(platform="binary_sensor", unique_id=_id(device_id, "online"), name="Online",
                   state_topic=availability, payload_on=topics.ONLINE, payload_off=topics.OFFLINE,
                   device_class="connectivity", entity_category="diagnostic"),
        _component(platform="sensor", unique_id=_id(device_id, "last_alert"), name="Last alert", state_topic=alert,
                   value_template="{{ value_json.subject_name or value_json.subject_id }}",
                   json_attributes_topic=alert,
                   json_attributes_template="{{ {'list': value_json.list, 'subject_id': value_json.subject_id, "
                   "'kind': value_json.kind, 'camera': value_json.camera, 'time': value_json.ts, "
                   "'event_id': value_json.event_id} | tojson }}",
                   **while_online),
    ]  # fmt: skip
    for camera in config.cameras:  # camera names are slugs: safe inside the templates' quotes
        components.append(_component(
            platform="sensor", unique_id=_id(device_id, "camera", camera.name), name=f"Camera {camera.name} fps",
            state_topic=heartbeat, value_template=f"{{{{ value_json.cameras['{camera.name}'].fps }}}}",
            unit_of_measurement="fps", state_class="measurement", json_attributes_topic=heartbeat,
            json_attributes_template=f"{{{{ value_json.cameras['{camera.name}'] | tojson }}}}", **while_online,
        ))  # fmt: skip
    return HaDeviceDiscovery(
        device=HaDevice(identifiers=[device_id], name=f"gatebox {box.site}/{box.box_id}", sw_version=version),
        origin=HaOrigin(sw_version=version),
        components={c.unique_id: c for c in components},
    )


def _label(kind: str) -> Literal["person", "car"]:
    return "car" if kind == "plate_match" else "person"


def raised(alert: Alert) -> AlertEvent:
    """`new`: the alert as raised."""
    summary = EventSummary(
        id=alert.event_id, camera=alert.camera, label=_label(alert.kind),
        sub_label=alert.subject_name or alert.plate or alert.subject_id, list=alert.list, subject_id=alert.subject_id,
        kind=alert.kind, score=alert.score, start_time=alert.ts.timestamp(), state="new",
    )  # fmt: skip
    return AlertEvent(type="new", before=summary, after=summary)


def state_changed(record: AlertRecord, before: str, now: float) -> AlertEvent:
    """`update` (acknowledged) or `end` (closed): `record` is the alert as it now stands, `before` its old state."""
    after = EventSummary.model_validate({
        "id": record.event_id, "camera": record.camera, "label": _label(record.kind), "sub_label": record.subject_id,
        "list": record.list_name, "subject_id": record.subject_id, "kind": record.kind,
        "start_time": datetime.fromisoformat(record.ts).timestamp(), "state": record.state, "acked_by": record.by,
        "end_time": now if record.state == "closed" else None,
    })  # fmt: skip
    previous = after.model_copy(update={"state": before, "end_time": None})
    return AlertEvent(type="end" if record.state == "closed" else "update", before=previous, after=after)
