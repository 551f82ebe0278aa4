"""Resends back off (issue 19): behind a district broker cut from the centre, every copy a box sends is
queued at the district and delivered later, so a fixed resend pace piles up copies; the wait before the
next copy doubles with each send, from `resend_after_s` up to `resend_max_s`."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.comms.outbox import Outbox, Priority
from tests.comms.test_outbox import message

# (sends so far, seconds since the last send, due again?) with resend_after_s 30, resend_max_s 300
CASES = [
    (1, 29, False), (1, 31, True),     # first wait: resend_after_s
    (2, 59, False), (2, 61, True),     # doubled
    (3, 119, False), (3, 121, True),
    (4, 239, False), (4, 241, True),
    (5, 299, False), (5, 301, True),   # capped at resend_max_s
    (12, 299, False), (12, 301, True),  # and stays capped however many sends
]  # fmt: skip


@pytest.mark.parametrize(("sends", "waited_s", "due_again"), CASES)
def test_the_wait_before_a_resend_doubles_up_to_its_cap(
    tmp_path: Path, sends: int, waited_s: float, due_again: bool
) -> None:
    outbox = Outbox(tmp_path / "o.db", budget_bytes=10**6)
    outbox.put(message("a1", Priority.ALERT))
    for n in range(sends):
        outbox.mark_sent(["a1"], now=1000.0 + n)
    last_sent = 1000.0 + sends - 1
    assert outbox.requeue_unconfirmed(last_sent + waited_s, resend_after_s=30, resend_max_s=300) == int(due_again)


def test_without_a_cap_the_pace_stays_fixed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", budget_bytes=10**6)
    outbox.put(message("a1", Priority.ALERT))
    for n in range(6):
        outbox.mark_sent(["a1"], now=1000.0 + n)
    assert outbox.requeue_unconfirmed(1005.0 + 31, resend_after_s=30) == 1


def test_a_reconnect_sends_everything_unconfirmed_at_once_whatever_its_wait(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", budget_bytes=10**6)
    outbox.put(message("a1", Priority.ALERT))
    for n in range(6):
        outbox.mark_sent(["a1"], now=1000.0 + n)
    assert outbox.requeue_unconfirmed(1010.0, resend_after_s=30, resend_max_s=300) == 0
    outbox.resend_all()
    assert [d[0] for d in outbox.due(limit=10)] == ["a1"]
