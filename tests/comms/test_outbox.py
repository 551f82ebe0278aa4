"""The durable outbox on its own: order, budget, receipts, durability across reopening."""

from __future__ import annotations

from pathlib import Path

from edge.comms.outbox import Outbox, OutgoingMessage, Priority


def message(event_id: str, priority: Priority, size: int = 10, needs_receipt: bool = True) -> OutgoingMessage:
    kind = {Priority.PANIC: "panic", Priority.ALERT: "alert", Priority.OTHER: "report"}[priority]
    return OutgoingMessage(event_id, kind, priority, f"t/{kind}", b"x" * size, needs_receipt)


def test_due_is_by_priority_then_age_and_put_is_idempotent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", budget_bytes=10**6)
    for m in [message("o1", Priority.OTHER), message("a1", Priority.ALERT), message("p1", Priority.PANIC),
              message("a2", Priority.ALERT), message("o2", Priority.OTHER), message("a1", Priority.ALERT)]:  # fmt: skip
        outbox.put(m)
    due = outbox.due(limit=10)
    assert [d[0] for d in due] == ["p1", "a1", "a2", "o1", "o2"]
    assert all(0 <= d[4] < 5 for d in due)  # age since queued, from the monotonic clock
    assert outbox.stats().depth == 5


def test_sent_messages_wait_for_a_receipt_then_resend(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", budget_bytes=10**6)
    outbox.put(message("a1", Priority.ALERT))
    outbox.put(message("a2", Priority.ALERT))
    outbox.mark_sent(["a1", "a2"], now=1000.0)
    assert outbox.requeue_unconfirmed(now=1010.0, resend_after_s=30) == 0
    assert outbox.due(limit=10) == []  # in flight, not yet confirmed
    assert outbox.requeue_unconfirmed(now=1031.0, resend_after_s=30) == 2
    assert [d[0] for d in outbox.due(limit=10)] == ["a1", "a2"]  # sent again
    outbox.mark_sent(["a1", "a2"], now=1040.0)
    assert outbox.remove(["a1"]) == 1
    outbox.resend_all()  # a reconnect: everything unconfirmed goes again at once
    assert [d[0] for d in outbox.due(limit=10)] == ["a2"]


def test_survives_reopening(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", budget_bytes=10**6)
    outbox.put(message("a1", Priority.ALERT))
    outbox.close()
    assert [d[0] for d in Outbox(tmp_path / "o.db", 10**6).due(10)] == ["a1"]


def test_budget_drops_oldest_low_priority_first_and_counts_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", budget_bytes=100)
    for i in range(4):
        outbox.put(message(f"o{i}", Priority.OTHER, size=20))
    outbox.put(message("a1", Priority.ALERT, size=20))
    outbox.put(message("p1", Priority.PANIC, size=20))  # 120 bytes: the oldest report goes
    assert [d[0] for d in outbox.due(10)] == ["p1", "a1", "o1", "o2", "o3"]
    for i in range(5):
        outbox.put(message(f"a{i + 2}", Priority.ALERT, size=20))
    stats = outbox.stats()
    assert stats.dropped == {"report": 4}
    # Only alerts and panics are left: they are never dropped, the budget is exceeded instead.
    assert [d[0] for d in outbox.due(10)] == ["p1", "a1", "a2", "a3", "a4", "a5", "a6"]
    assert stats.bytes == 140
