"""Centre-side commands to a box, signed with the centre's Ed25519 key."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from edge.centre.watch import connect, wait_connected
from edge.comms import topics
from edge.comms.messages import AckAlert
from edge.config import BrokerConfig
from edge.errors import GateboxError
from edge.security.signing import load_private_key, seal


def send_ack(
    broker: BrokerConfig, key_path: Path, box: str, event_id: str, state: str, note: str | None, by: str | None
) -> None:
    """Publish a signed `ack_alert` command to `box` (SITE/BOX_ID) and wait for the broker's PUBACK."""
    site, _, box_id = box.partition("/")
    if not site or not box_id:
        raise GateboxError(f"--box must be SITE/BOX_ID, got {box!r}")
    command = AckAlert(command="ack_alert", event_id=event_id, state=state, note=note, by=by,
                       issued_at=datetime.now(timezone.utc))  # fmt: skip
    payload = seal(command.model_dump(mode="json"), load_private_key(key_path))
    client, _ = connect(broker, [])
    try:
        wait_connected(client, broker)
        topic = topics.centre_topic(broker.topic_prefix, topics.COMMAND, site, box_id)
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
