from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from edge.store.alert_states import AlertStates
from tests.support.alerts import sample_alert as alert


@pytest.mark.parametrize(
    ("steps", "final", "results"),
    [
        (["acked", "closed"], "closed", [True, True]),
        (["closed", "acked"], "closed", [True, False]),  # never backwards
        (["acked", "acked"], "acked", [True, False]),
    ],
)
def test_states_only_move_forward(tmp_path: Path, steps: list[str], final: str, results: list[bool]) -> None:
    states = AlertStates(tmp_path)
    states.record(alert("e1"))
    assert [states.set_state("e1", s, None, None) for s in steps] == results
    record = states.get("e1")
    assert record is not None and record.state == final
    assert states.set_state("unknown", "acked", None, None) is False


def test_snapshots_go_when_closed_or_past_retention(tmp_path: Path) -> None:
    states = AlertStates(tmp_path)
    for event_id in ("old", "open", "done"):
        states.record(alert(event_id))
    states.set_state("done", "closed", None, None)
    old = tmp_path / "snapshots" / "old.jpg"
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    assert states.purge_snapshots(30 * 86400) == 1
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["open.jpg"]
