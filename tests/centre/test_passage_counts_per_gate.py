"""The counts the console's passage section shows per gate: today's, and every gate of the last 24 h."""

from __future__ import annotations

import time
from pathlib import Path

from centre.passages import PassageFilter, PassageLog, counts
from edge.protocol.messages import Passage


def test_each_gate_has_its_own_counts_for_today_and_a_gate_seen_only_yesterday_is_listed_at_zero(
    tmp_path: Path,
) -> None:
    log = PassageLog(tmp_path / "passages.sqlite3")
    now = time.mktime((2026, 6, 10, 3, 30, 0, 0, 0, -1))  # 03:30 local: 5 h ago was yesterday
    try:
        for n, (box, camera, ago, subject, direction) in enumerate([
            ("east", "gate", 60, "person", "in"), ("east", "gate", 30, "person", "in"),
            ("east", "lane", 20, "vehicle", "out"), ("west", "gate", 5 * 3600, "person", "out"),
        ]):  # fmt: skip
            log.add("s", box, Passage(passage_id=f"p{n}", site="s", box_id=box, camera=camera, ts=now - ago,
                                      subject=subject, direction=direction,  # type: ignore[arg-type]
                                      plate="AB123" if subject == "vehicle" else None))  # fmt: skip
        gates = counts(log, now, PassageFilter())["gates"]
        assert gates == [
            {"site": "s", "box_id": "east", "camera": "gate", "today": {"person_in": 2}},
            {"site": "s", "box_id": "east", "camera": "lane", "today": {"vehicle_out": 1}},
            {"site": "s", "box_id": "west", "camera": "gate", "today": {}},
        ]
        assert counts(log, now, PassageFilter(box_id="west"))["gates"] == [gates[2]]
    finally:
        log.close()
