"""MQTT topic layout (documented in the README).

<prefix>/<site>/<box>/availability   retained `online`; the broker publishes `offline` (LWT)
<prefix>/<site>/<box>/alert          alert JSON (schema gatebox.alert/1), QoS 1
<prefix>/<site>/<box>/events         Frigate-style alert events (opt-in)
<prefix>/<site>/<box>/preview        a camera preview the centre asked for (best effort, QoS 1)
<discovery_prefix>/device/<site>/<box>/config   Home Assistant device discovery, retained (opt-in)
"""

from __future__ import annotations

from typing import Protocol


class BoxIdentity(Protocol):
    """Which box: the box's `box` config section, or anything else naming a site and a box."""

    @property
    def site(self) -> str: ...

    @property
    def box_id(self) -> str: ...


class HasTopicPrefix(Protocol):
    @property
    def topic_prefix(self) -> str: ...


def box_topic(broker: HasTopicPrefix, box: BoxIdentity, leaf: str) -> str:
    return f"{broker.topic_prefix}/{box.site}/{box.box_id}/{leaf}"


def centre_topic(prefix: str, leaf: str, site: str = "+", box_id: str = "+") -> str:
    """Subscription filter for the centre: every box of every site by default."""
    return f"{prefix}/{site}/{box_id}/{leaf}"


def ha_discovery_topic(discovery_prefix: str, box: BoxIdentity) -> str:
    """Home Assistant device discovery: `<discovery_prefix>/device/<site>/<box>/config`. `<site>/<box>` is the
    box's broker login, so the broker's ACL lets each box write its own discovery config and no other's."""
    return f"{discovery_prefix}/device/{box.site}/{box.box_id}/config"


AVAILABILITY = "availability"
ALERT = "alert"
ALERT_STATE = "alert_state"
HEARTBEAT = "heartbeat"
RECEIPT = "receipt"
LIST_ACK = "list_ack"
PANIC = "panic"
PASSAGE = "passage"
PREVIEW = "preview"  # a camera preview, the answer to a `preview` command
EVENTS = "events"  # Frigate-style alert events (`integrations.events`)
DEVICE = "device"
COMMAND = "cmd"
ONLINE = "online"
OFFLINE = "offline"
