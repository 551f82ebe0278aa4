"""The box's command rejection matrix, in process (no broker): every malformed, unsigned, forged,
oversized, too deep or invalid command on the box's `cmd` topic is refused, counted under its reason
and changes nothing; a valid signed ack moves the alert forward once and is reported once; a replay,
a step back, an unknown alert or another box's topic changes nothing.

Messages go in where the link's dispatch thread takes them from the broker (an `InMemoryLink` whose
thread is not started, so each delivery runs to the end before the test looks): the whole inbound path
runs — the link's routing and refusal counting, the `CommandChannel`'s bounds, signature and model, then
the handler its owner registered (`AlertLog.apply_ack`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.box import Box as GateBox
from edge.comms.commands import CommandChannel
from edge.comms.delivery import MAX_INBOUND_DEPTH
from edge.comms.link import InMemoryBroker, InMemoryLink, _Message
from edge.config import BoxConfig, GateboxConfig, LinkConfig
from edge.protocol.messages import AlertState
from edge.protocol.signing import seal
from tests.support.alerts import sample_alert

CENTRE = Ed25519PrivateKey.generate()
INTRUDER = Ed25519PrivateKey.generate()
MAX_BYTES = 4096
BOX = BoxConfig(site="s1", box_id="b1")
COMMAND_TOPIC = "gatebox/s1/b1/cmd"
EVENT_ID = "e-1"


def ack(state: object = "acked", **fields: object) -> dict[str, object]:
    return {"command": "ack_alert", "event_id": EVENT_ID, "state": state, "note": "patrol sent", "by": "op7",
            "issued_at": datetime(2026, 11, 30, 12, tzinfo=timezone.utc).isoformat(), **fields}  # fmt: skip


def envelope(body: object, sig: object, **extra: object) -> bytes:
    return json.dumps({"body": body, "sig": sig, **extra}).encode()


def signature(text: str, key: Ed25519PrivateKey = CENTRE) -> str:
    return base64.b64encode(key.sign(text.encode())).decode()


SIGNED_TEXT = json.dumps(ack(), separators=(",", ":"))
TAMPERED = SIGNED_TEXT.replace("acked", "closed")

# (payload on the box's cmd topic, the reason it is refused and counted under)
REFUSED: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"{not json", "bad_signature"),
    "unsigned command": (json.dumps(ack()).encode(), "bad_signature"),
    "signed by another key": (seal(ack(), INTRUDER), "bad_signature"),
    "body changed after signing": (envelope(TAMPERED, signature(SIGNED_TEXT)), "bad_signature"),
    "signature not base64": (envelope(SIGNED_TEXT, "not base64!"), "bad_signature"),
    "signature missing": (json.dumps({"body": SIGNED_TEXT}).encode(), "bad_signature"),
    "body an object, not JSON text": (envelope(ack(), signature(SIGNED_TEXT)), "bad_signature"),
    "extra envelope field": (envelope(SIGNED_TEXT, signature(SIGNED_TEXT), key_id="k2"), "bad_signature"),
    "signed body not JSON": (envelope("ack e-1", signature("ack e-1")), "bad_signature"),
    "envelope a list": (b'["body", "sig"]', "bad_signature"),
    "oversized": (seal(ack(note="x" * MAX_BYTES), CENTRE), "oversized"),
    "too deep": (b"[" * (MAX_INBOUND_DEPTH + 1) + b"]" * (MAX_INBOUND_DEPTH + 1), "too_deep"),
    "unknown command": (seal(ack(command="reboot"), CENTRE), "invalid_command"),
    "unknown field": (seal(ack(surprise=1), CENTRE), "invalid_command"),
    "state of the wrong type": (seal(ack(state=42), CENTRE), "invalid_command"),
    "state a box does not know": (seal(ack(state="deleted"), CENTRE), "invalid_command"),
    "event id with a slash": (seal(ack(event_id="../e-1"), CENTRE), "invalid_command"),
    "event id empty": (seal(ack(event_id=""), CENTRE), "invalid_command"),
    "no issued_at": (seal({k: v for k, v in ack().items() if k != "issued_at"}, CENTRE), "invalid_command"),
    "issued_at not a time": (seal(ack(issued_at="yesterday"), CENTRE), "invalid_command"),
    "note over 1000 characters": (seal(ack(note="n" * 1001), CENTRE), "invalid_command"),
    "a signed list instead of a command": (seal([ack()], CENTRE), "invalid_command"),  # type: ignore[arg-type]
}


@dataclass
class Box:
    services: GateBox
    link: InMemoryLink

    def deliver(self, payload: bytes, topic: str = COMMAND_TOPIC) -> None:
        """As the link's dispatch thread gets a message from the broker."""
        self.link._dispatch._deliver(_Message(topic, payload))

    def state(self) -> str:
        record = self.services.states.get(EVENT_ID)
        assert record is not None
        return record.state

    def reported(self) -> list[dict[str, object]]:
        return [json.loads(payload) for _, payload, _ in self.services.delivery.queued(AlertState)]


def make_box(data_dir: Path, centre_key: Ed25519PrivateKey | None = CENTRE) -> Box:
    config = GateboxConfig(box=BOX, link=LinkConfig(max_inbound_bytes=MAX_BYTES))
    services = GateBox(config, data_dir, connect=False)  # no broker: the link below is never started
    services.alerts.emit(sample_alert(EVENT_ID))
    public = centre_key.public_key() if centre_key else None
    link = InMemoryLink(InMemoryBroker())
    CommandChannel(config, public, link).register("ack_alert", services.alerts.apply_ack)
    return Box(services, link)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    made = make_box(tmp_path)
    yield made
    made.services.close()


@pytest.mark.parametrize("payload, reason", REFUSED.values(), ids=REFUSED.keys())
def test_every_bad_command_is_refused_counted_and_changes_nothing(box: Box, payload: bytes, reason: str) -> None:
    box.deliver(payload)
    assert dict(box.link.bad_input) == {reason: 1}
    assert box.state() == "new" and box.reported() == []


def test_a_valid_ack_moves_the_alert_once_and_a_replay_or_a_step_back_changes_nothing(box: Box) -> None:
    acked = seal(ack(), CENTRE)
    box.deliver(acked)
    assert box.state() == "acked"
    (report,) = box.reported()
    assert (report["event_id"], report["state"], report["by"], report["note"]) == (EVENT_ID, "acked", "op7",
                                                                                   "patrol sent")  # fmt: skip
    box.deliver(acked)  # the same signed message again (a replay, or QoS 1 redelivery)
    assert box.state() == "acked" and len(box.reported()) == 1
    box.deliver(seal(ack("closed"), CENTRE))
    box.deliver(acked)  # closed never goes back to acked
    assert box.state() == "closed" and [r["state"] for r in box.reported()] == ["acked", "closed"]
    assert dict(box.link.bad_input) == {}  # valid commands, only without effect: not refusals


def test_an_ack_for_an_alert_the_box_never_raised_changes_nothing(box: Box) -> None:
    box.deliver(seal(ack(event_id="e-unknown"), CENTRE))
    assert box.state() == "new" and box.reported() == [] and dict(box.link.bad_input) == {}


def test_a_command_on_another_box_s_topic_is_not_taken(box: Box) -> None:
    box.deliver(seal(ack(), CENTRE), topic="gatebox/s1/b2/cmd")
    assert box.state() == "new" and box.reported() == []


def test_without_the_centre_s_key_every_command_is_refused(tmp_path: Path) -> None:
    keyless = make_box(tmp_path, centre_key=None)
    try:
        keyless.deliver(seal(ack(), CENTRE))
        assert dict(keyless.link.bad_input) == {"commands_disabled": 1}
        assert keyless.state() == "new" and keyless.reported() == []
    finally:
        keyless.services.close()
