from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.protocol.errors import InputError
from edge.scoring import TruthRow, load_truth, score


@dataclass(frozen=True)
class A:
    subject_id: str
    frame: int


TRUTH = [TruthRow("boy", 0, 104), TruthRow("woman", 20, 87)]


@pytest.mark.parametrize(
    ("alerts", "alerted", "false"),
    [
        ([A("boy", 12), A("woman", 24)], {"boy": 12, "woman": 24}, []),
        ([A("boy", 12)], {"boy": 12, "woman": None}, []),
        ([A("boy", 12), A("boy", 40)], {"boy": 12, "woman": None}, [A("boy", 40)]),  # a second alert: false
        ([A("woman", 5)], {"boy": None, "woman": None}, [A("woman", 5)]),  # before she is visible
        ([A("stranger", 3)], {"boy": None, "woman": None}, [A("stranger", 3)]),
    ],
)
def test_score(alerts: list[A], alerted: dict, false: list[A]) -> None:
    result = score(alerts, TRUTH)
    assert {s.subject_id: s.alert_frame for s in result.subjects} == alerted
    assert result.false_alerts == false
    assert result.missed == [k for k, v in alerted.items() if v is None]


def test_load_truth(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("# comment\nsubject_id,first_frame,last_frame\nboy,0,104\n\nwoman, 20, 87\n")
    assert load_truth(path) == TRUTH
    path.write_text("boy,zero,104\n")
    with pytest.raises(InputError, match="row 1 must be subject_id,first_frame,last_frame"):
        load_truth(path)
