"""Centre-side commands to a box, signed with the centre's Ed25519 key."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol import topics
from edge.protocol.errors import GateboxError
from edge.protocol.messages import AckAlert, AckState, PreviewRequest
from edge.protocol.mqtt import BrokerConfig, session
from edge.protocol.signing import load_private_key, seal


def publish_ack(
    client: mqtt.Client, prefix: str, key: Ed25519PrivateKey, site: str, box_id: str, event_id: str, state: AckState,
    note: str | None, by: str | None, timeout_s: float = 10.0,
) -> bool:  # fmt: skip
    """Publish a signed `ack_alert` command on a connected client; True once the broker has it (PUBACK)."""
    command = AckAlert(command="ack_alert", event_id=event_id, state=state, note=note, by=by,
                       issued_at=datetime.now(timezone.utc))  # fmt: skip
    payload = seal(command.model_dump(mode="json"), key)
    info = client.publish(topics.centre_topic(prefix, topics.COMMAND, site, box_id), payload, qos=1)
    info.wait_for_publish(timeout_s)
    return info.is_published()


def publish_preview_request(
    client: mqtt.Client, prefix: str, key: Ed25519PrivateKey, site: str, box_id: str, request_id: str,
    camera: str | None, by: str | None, timeout_s: float = 10.0,
) -> bool:  # fmt: skip
    """Publish a signed `preview` command (every camera of the box, or `camera`); True once the broker has it.
    The box answers on its `preview` topic (`CameraPreview`)."""
    command = PreviewRequest(command="preview", request_id=request_id, camera=camera, by=by,
                             issued_at=datetime.now(timezone.utc))  # fmt: skip
    payload = seal(command.model_dump(mode="json"), key)
    info = client.publish(topics.centre_topic(prefix, topics.COMMAND, site, box_id), payload, qos=1)
    info.wait_for_publish(timeout_s)
    return info.is_published()


def send_ack(
    broker: BrokerConfig, key_path: Path, box: str, event_id: str, state: AckState, note: str | None, by: str | None
) -> None:
    """Publish a signed `ack_alert` command to `box` (SITE/BOX_ID) and wait for the broker's PUBACK."""
    site, _, box_id = box.partition("/")
    if not site or not box_id:
        raise GateboxError(f"--box must be SITE/BOX_ID, got {box!r}")
    key = load_private_key(key_path)
    with session(broker) as (client, _):
        if not publish_ack(client, broker.topic_prefix, key, site, box_id, event_id, state, note, by):
            raise GateboxError(f"the broker {broker.host}:{broker.port} did not confirm the command")
