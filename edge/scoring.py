"""Scores a replay's alerts against ground truth, for testers and the benchmark harness.

Truth CSV, one row per subject pass: `subject_id,first_frame,last_frame` — the frames in which
the subject is visible (a header row is optional).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from edge.protocol.errors import InputError


class ScoredAlert(Protocol):
    """What scoring needs of an alert (an `edge.alerts.Alert` has it; so can a baseline's)."""

    @property
    def subject_id(self) -> str: ...

    @property
    def frame(self) -> int: ...


class TrackedAlert(ScoredAlert, Protocol):
    """What `Score.table` also shows of a false alert: its track and match score (an `edge.alerts.Alert`
    has them; a baseline that only names subject and frame can be scored, not tabled)."""

    @property
    def track_id(self) -> int: ...

    @property
    def score(self) -> float: ...


# Covariant: a Score of `Alert`s is a Score of `TrackedAlert`s, so `table` accepts it.
AlertT_co = TypeVar("AlertT_co", bound=ScoredAlert, covariant=True)
AlertT = TypeVar("AlertT", bound=ScoredAlert)


@dataclass(frozen=True)
class TruthRow:
    subject_id: str
    first_frame: int
    last_frame: int


@dataclass(frozen=True)
class SubjectScore:
    subject_id: str
    first_frame: int
    alert_frame: int | None  # None: missed

    @property
    def frames_to_alert(self) -> int | None:
        return None if self.alert_frame is None else self.alert_frame - self.first_frame


@dataclass(frozen=True)
class Score(Generic[AlertT_co]):
    subjects: list[SubjectScore]
    false_alerts: Sequence[AlertT_co]  # the scored alerts themselves, of whatever type `score` was given

    @property
    def missed(self) -> list[str]:
        return [s.subject_id for s in self.subjects if s.alert_frame is None]

    @property
    def true_alerts(self) -> int:
        return sum(s.alert_frame is not None for s in self.subjects)

    def table(self: Score[TrackedAlert], fps: float) -> str:
        lines = [f"{'subject':<20} {'result':<8} {'frames to alert':>16} {'seconds':>8}"]
        for s in self.subjects:
            delay = s.frames_to_alert
            if delay is None:
                lines.append(f"{s.subject_id:<20} {'MISSED':<8} {'-':>16} {'-':>8}")
            else:
                lines.append(f"{s.subject_id:<20} {'alerted':<8} {delay:>16} {delay / fps:>8.2f}")
        for a in self.false_alerts:
            lines.append(f"{a.subject_id:<20} {'FALSE':<8} frame {a.frame}, track {a.track_id}, score {a.score:.2f}")
        lines.append(f"score: {self.true_alerts}/{len(self.subjects)} alerted, {len(self.false_alerts)} false alert(s)")
        return "\n".join(lines)


def load_truth(path: Path) -> list[TruthRow]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except OSError as e:
        raise InputError(f"cannot read truth file {path}: {e.strerror or e}") from None
    if rows and rows[0][0].strip() == "subject_id":
        rows = rows[1:]
    truth = []
    for number, row in enumerate(rows, 1):
        try:
            subject, first, last = (c.strip() for c in row)
            truth.append(TruthRow(subject, int(first), int(last)))
        except ValueError:
            raise InputError(
                f"{path}: row {number} must be subject_id,first_frame,last_frame; got {','.join(row)!r}"
            ) from None
    return truth


def score(alerts: Sequence[AlertT], truth: Sequence[TruthRow]) -> Score[AlertT]:
    """Each truth row is met by the first alert for its subject within its frames; every other
    alert (an unlisted subject, a second alert in the same pass, a frame where the subject is not
    visible) is false."""
    unused = sorted(alerts, key=lambda a: a.frame)
    subjects = []
    for row in truth:
        hit = next(
            (a for a in unused if a.subject_id == row.subject_id and row.first_frame <= a.frame <= row.last_frame),
            None,
        )
        if hit is not None:
            unused.remove(hit)
        subjects.append(SubjectScore(row.subject_id, row.first_frame, hit.frame if hit else None))
    return Score(subjects, unused)
