"""The contract's builders (`edge.protocol`): one receipt builder for every receiver, and the box's
reports built with the models the centre validates them with."""

from __future__ import annotations

from edge.comms.delivery import stamp
from edge.plates.stage import PassageRecord
from edge.protocol.messages import Passage, Receipt, receipt_for


def test_a_receipt_goes_to_the_senders_receipt_topic_and_names_the_ids() -> None:
    topic, payload = receipt_for("gatebox/site-a/box-1/alert", "e1")
    assert topic == "gatebox/site-a/box-1/receipt"
    assert Receipt.model_validate_json(payload).event_ids == ["e1"]


def test_a_receipt_for_any_message_id_a_box_sent_never_fails() -> None:
    """A panic's `message_id` (`<event_id>:<sequence>`) may be longer than an event id: the receiver
    confirms it all the same rather than failing on its own receipt."""
    message_id = f"{'p' * 64}:12"
    topic, payload = receipt_for("gatebox/s/b/panic", message_id)
    assert topic == "gatebox/s/b/receipt" and message_id in payload.decode()


def test_a_passage_is_built_with_its_model() -> None:
    record = PassageRecord(camera="gate", ts=1_700_000_000.0, plate="粤B12345", colour="blue", direction="out")
    message = record.message("site-a", "box-1")
    sent = Passage.model_validate_json(stamp(message.model_dump_json(by_alias=True).encode(), 0.5))
    assert sent.plate == "粤B12345" and sent.direction == "out" and sent.site == "site-a" and sent.age_s == 0.5
