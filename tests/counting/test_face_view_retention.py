"""Face views of person passages go once `snapshot_expires_at` has passed: from the box's outbox (still
queued) and from the centre's passage log (the console's pruning pass), clocks injected."""

from __future__ import annotations

import base64
import types
from pathlib import Path

import pytest

from centre.console import Console
from centre.passages import PassageFilter
from centre.store import CentreStore
from edge.comms.delivery import Delivery
from edge.comms.outbox import Outbox
from edge.config import GateboxConfig
from edge.counting.retention import forget_expired_passage_views
from edge.protocol.messages import Passage

VIEW = base64.b64encode(b"\xff\xd8face\xff\xd9").decode()
DAY = 86400.0


def passage(passage_id: str, expires_at: float | None, ts: float = 1000.0) -> Passage:
    return Passage(passage_id=passage_id, site="s", box_id="b", camera="gate", ts=ts, subject="person",
                   direction="in", snapshot_jpeg_b64=VIEW if expires_at else None,
                   snapshot_expires_at=expires_at)  # fmt: skip


def test_the_box_drops_expired_face_views_from_queued_passages_and_keeps_the_rest(tmp_path: Path) -> None:
    delivery = Delivery(GateboxConfig(), Outbox(tmp_path / "outbox.sqlite3", 10_000_000))
    for message in (passage("p-old", 1000.0 + 7 * DAY), passage("p-new", 1000.0 + 9 * DAY), passage("p-none", None)):
        delivery.send(message)
    assert forget_expired_passage_views(delivery, now=1000.0 + 8 * DAY) == 1
    queued = {event_id: Passage.model_validate_json(payload) for event_id, payload, _ in delivery.queued(Passage)}
    by_passage = {p.passage_id: p for p in queued.values()}
    assert by_passage["p-old"].snapshot_jpeg_b64 is None and by_passage["p-old"].snapshot_expires_at is None
    assert by_passage["p-new"].snapshot_jpeg_b64 == VIEW
    assert by_passage["p-old"].direction == "in" and len(queued) == 3  # the passage itself is still sent
    assert forget_expired_passage_views(delivery, now=1000.0 + 8 * DAY) == 0  # nothing left to drop
    delivery.outbox.close()


def test_the_consoles_pruning_pass_forgets_expired_passage_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CentreStore(tmp_path / "centre.sqlite3")
    store.passages.add("s", "b", passage("p-old", 1000.0 + 7 * DAY, ts=1000.0))
    store.passages.add("s", "b", passage("p-new", 1000.0 + 9 * DAY, ts=2000.0))
    monkeypatch.setattr("centre.console.time.time", lambda: 1000.0 + 8 * DAY)
    console = types.SimpleNamespace(store=store, settings=types.SimpleNamespace(closed_snapshot_days=30.0))
    Console._forget_old_snapshots(console)  # type: ignore[arg-type]
    views = {row["ts"]: row["has_snapshot"] for row in store.passages.search(PassageFilter())}
    assert views == {1000.0: False, 2000.0: True}
    store.close()
