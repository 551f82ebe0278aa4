"""`Score.table`: what it shows of a false alert, and that only alerts which carry a track and a score
can be tabled (the scoring Protocol declares what the table reads; mypy holds callers to it)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from mypy import api as mypy_api

from edge.scoring import TruthRow, score

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Tracked:
    subject_id: str
    frame: int
    track_id: int
    score: float


def test_table_shows_each_false_alerts_track_and_score() -> None:
    scored = score([Tracked("boy", 12, 3, 0.71), Tracked("stranger", 30, 7, 0.55)], [TruthRow("boy", 0, 104)])
    table = scored.table(fps=25.0).splitlines()
    assert table[1].split() == ["boy", "alerted", "12", "0.48"]
    assert table[2].split() == ["stranger", "FALSE", "frame", "30,", "track", "7,", "score", "0.55"]
    assert table[-1] == "score: 1/1 alerted, 1 false alert(s)"


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(source))
    out, err, status = mypy_api.run(
        ["--config-file", str(REPO / "mypy.ini"), "--cache-dir", str(tmp_path / "cache"), str(snippet)]
    )
    return out + err, status


def test_only_alerts_with_a_track_and_score_can_be_tabled(tmp_path: Path) -> None:
    out, status = _mypy(
        tmp_path,
        """
        from dataclasses import dataclass

        from edge.scoring import TruthRow, score


        @dataclass(frozen=True)
        class Bare:
            subject_id: str
            frame: int


        @dataclass(frozen=True)
        class Tracked:
            subject_id: str
            frame: int
            track_id: int
            score: float


        truth = [TruthRow("boy", 0, 104)]
        score([Bare("boy", 12)], truth).missed  # scoring needs subject and frame only
        score([Tracked("boy", 12, 3, 0.7)], truth).table(25.0)
        score([Bare("boy", 12)], truth).table(25.0)  # line 24: no track or score to show
        """,
    )
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out
    assert "snippet.py:24:" in errors[0] and 'Invalid self argument "Score[Bare]"' in errors[0], out
