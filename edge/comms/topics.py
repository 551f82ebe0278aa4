"""MQTT topic layout (documented in the README).

<prefix>/<site>/<box>/availability   retained `online`; the broker publishes `offline` (LWT)
<prefix>/<site>/<box>/alert          alert JSON (schema gatebox.alert/1), QoS 1
"""

from __future__ import annotations

from edge.config import BoxConfig, BrokerConfig


def box_topic(broker: BrokerConfig, box: BoxConfig, leaf: str) -> str:
    return f"{broker.topic_prefix}/{box.site}/{box.box_id}/{leaf}"


def centre_topic(prefix: str, leaf: str, site: str = "+", box_id: str = "+") -> str:
    """Subscription filter for the centre: every box of every site by default."""
    return f"{prefix}/{site}/{box_id}/{leaf}"


AVAILABILITY = "availability"
ALERT = "alert"
ALERT_STATE = "alert_state"
HEARTBEAT = "heartbeat"
RECEIPT = "receipt"
LIST_ACK = "list_ack"
PANIC = "panic"
PASSAGE = "passage"
DEVICE = "device"
COMMAND = "cmd"
ONLINE = "online"
OFFLINE = "offline"
