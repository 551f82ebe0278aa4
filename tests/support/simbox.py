"""A simulated gate box for the console's tests and load benchmark: it speaks the box's MQTT
protocol (availability with a will, heartbeats, alerts, panics, alert states, list acks) with
payloads built from the box's own models, and answers signed acks the way a box does."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import datetime, timezone

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.protocol.alert import Alert
from edge.protocol.messages import (
    AckAlert,
    AlertState,
    CameraReport,
    Heartbeat,
    ListAck,
    ListReport,
    OutboxReport,
    Receipt,
)
from edge.protocol.panic import PanicEvent
from edge.protocol.signing import BadSignature, open_sealed


def face_jpeg(seed: int = 0) -> bytes:
    """A small JPEG standing in for a face crop (the browser test uses a real box's)."""
    image = np.random.default_rng(seed).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


class SimBox:
    def __init__(self, port: int, site: str, box_id: str, centre_key: Ed25519PublicKey | None = None,
                 prefix: str = "gatebox", keepalive: int = 5) -> None:  # fmt: skip
        self.site, self.box_id, self.prefix = site, box_id, prefix
        self.centre_key = centre_key
        self.commands: list[AckAlert] = []
        self.refused_commands = 0
        self.receipts: set[str] = set()
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{site}-{box_id}")
        self.client.will_set(self.topic("availability"), "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=keepalive)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError(f"{site}/{box_id} could not connect")

    def topic(self, leaf: str) -> str:
        return f"{self.prefix}/{self.site}/{self.box_id}/{leaf}"

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, properties: object
    ) -> None:
        client.subscribe([(self.topic("cmd"), 1), (self.topic("receipt"), 1)])
        client.publish(self.topic("availability"), "online", qos=1, retain=True)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/receipt"):
            self.receipts.update(Receipt.model_validate_json(message.payload).event_ids)
            return
        if self.centre_key is None:  # as a real box without the centre's key: no command is trusted
            self.refused_commands += 1
            return
        try:
            command = AckAlert.model_validate(open_sealed(bytes(message.payload), self.centre_key))
        except (BadSignature, ValueError, TypeError):
            self.refused_commands += 1
            return
        self.commands.append(command)
        state = AlertState(event_id=command.event_id, state=command.state, note=command.note, by=command.by,
                           ts=time.time())  # fmt: skip
        self.publish("alert_state", state.model_dump_json(by_alias=True))

    def publish(self, leaf: str, body: dict[str, object] | str, retain: bool = False) -> mqtt.MQTTMessageInfo:
        payload = body if isinstance(body, str) else json.dumps(body)
        return self.client.publish(self.topic(leaf), payload, qos=1, retain=retain)

    def heartbeat(self, fps: float = 25.0, depth: int = 0, lists: dict[str, int] | None = None) -> None:
        beat = Heartbeat(
            site=self.site, box_id=self.box_id, ts=time.time(), version="sim", uptime_s=1.0,
            cameras={"gate": CameraReport(connected=True, fps=fps, frames=100, dropped=0)},
            outbox=OutboxReport(depth=depth, bytes=0, dropped={}, oldest_unconfirmed_age_s=None),
            lists={name: ListReport(version=v, subjects=1) for name, v in (lists or {}).items()},
        )  # fmt: skip
        self.publish("heartbeat", beat.model_dump_json(by_alias=True))

    def alert(self, subject: str = "s1", list_name: str = "watchlist", event_id: str | None = None,
              seed: int = 0) -> Alert:  # fmt: skip
        alert = Alert(
            event_id=event_id or uuid.uuid4().hex, kind="face_match", list=list_name, list_version="v3",
            subject_id=subject, site=self.site, box_id=self.box_id, camera="gate", ts=datetime.now(timezone.utc),
            frame=1, track_id=1, score=0.62, distance=0.38, matching_frames=3, bbox=(10, 10, 90, 110),
            snapshot_jpeg_b64=base64.b64encode(face_jpeg(seed)).decode(),
        )  # fmt: skip
        self.publish("alert", alert.to_json())
        return alert

    def panic(self, device: str = "btn-1", event_id: str | None = None, sequence: int = 1,
              view: bytes | None = None) -> PanicEvent:  # fmt: skip
        """`view`: a JPEG of the nearest camera, as a box sends with an event's first message."""
        event_id = event_id or uuid.uuid4().hex
        now = datetime.now(timezone.utc)
        event = PanicEvent(
            event_id=event_id, message_id=f"{event_id}:{sequence}", kind="panic", device_id=device,
            household="Wang", address="Bldg 3, 402", pressed_at=now, received_at=now, sequence=sequence,
            presses=sequence, site=self.site, box_id=self.box_id,
            snapshot_jpeg_b64=base64.b64encode(view).decode() if view else None, snapshot_ts=now if view else None,
        )  # fmt: skip
        self.publish("panic", event.to_json())
        return event

    def list_ack(self, list_name: str, version: int) -> None:
        ack = ListAck(list=list_name, version=version, entries=1, ts=time.time())
        self.publish("list_ack", ack.model_dump_json(by_alias=True))

    def close(self, goodbye: bool = True) -> None:
        if goodbye:
            self.publish("availability", "offline", retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()
