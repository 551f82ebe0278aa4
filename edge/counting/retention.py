"""Face views of person passages past `passages.people.snapshot_retention_days` are deleted on the box
too: a passage still queued in the outbox (the centre unreachable for days) loses its face view when
`snapshot_expires_at` has passed, and is sent without it; counts and times stay."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from edge.comms.delivery import Delivery
from edge.protocol.messages import Passage

log = logging.getLogger(__name__)


def forget_expired_passage_views(delivery: Delivery, now: float) -> int:
    """Drop the face view of every queued passage whose `snapshot_expires_at` is at or before `now`."""
    stripped: dict[str, bytes] = {}
    for event_id, payload, _held in delivery.queued(Passage):
        try:
            passage = Passage.model_validate_json(payload)
        except ValidationError:
            continue  # not ours to judge here: delivery sends or refuses it as it is
        if passage.snapshot_jpeg_b64 is None or passage.snapshot_expires_at is None:
            continue
        if passage.snapshot_expires_at <= now:
            bare = passage.model_copy(update={"snapshot_jpeg_b64": None, "snapshot_expires_at": None})
            stripped[event_id] = bare.model_dump_json(by_alias=True).encode()
    removed = delivery.outbox.replace_payloads(stripped) if stripped else 0
    if removed:
        log.info("deleted %d passage face view(s) past their retention from the outbox", removed)
    return removed
