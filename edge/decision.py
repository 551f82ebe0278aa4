"""Decision stage: turns per-sample matches of a track into at most one alert per person per pass."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from edge.config import RecognitionConfig
from edge.types import AlertDecision, FaceObservation, Match

MAX_REMEMBERED_ENDS = 4096
AT_RISK_LIST = "at_risk_elders"


def _parse_hours(text: str | None) -> tuple[int, int] | None:
    """`HH:MM-HH:MM` -> (start, end) minutes of the day."""
    if not text:
        return None
    start, end = (int(h) * 60 + int(m) for h, m in (part.split(":") for part in text.split("-")))
    return start, end


def _within(hours: tuple[int, int], ts: float) -> bool:
    local = time.localtime(ts)
    minute = local.tm_hour * 60 + local.tm_min
    start, end = hours
    return start <= minute < end if start <= end else minute >= start or minute < end


@dataclass
class _Evidence:
    matching_frames: Counter[tuple[str, str]] = field(default_factory=Counter)
    best: dict[tuple[str, str], Match] = field(default_factory=dict)


class AlertDecider:
    """A track alerts once, when `min_matching_frames` of its samples matched the same subject or
    one matched within `strong_distance`; a lone fluke frame never alerts. A subject that alerted
    on this camera does not alert again within `subject_cooldown_s` (a track broken by an
    occluder is still the same pass)."""

    def __init__(self, config: RecognitionConfig) -> None:
        self._config = config
        self._hours = _parse_hours(config.at_risk_hours)
        self._evidence: dict[int, _Evidence] = {}
        # At-risk elders alert only on leaving: identity and an outward crossing of the same track,
        # in either order.
        self._identified_at_risk: dict[int, AlertDecision] = {}
        self._crossed_out: set[int] = set()
        self._decided: set[int] = set()
        # Embeddings run behind the tracker, so a sample can arrive after its track ended;
        # remembering recent ends keeps such stragglers from reopening the track.
        self._ended: dict[int, None] = {}
        self._last_alert_ts: dict[tuple[str, str], float] = {}

    def update(self, observations: Sequence[FaceObservation]) -> list[AlertDecision]:
        decisions = []
        for obs in observations:
            sample, match = obs.sample, obs.match
            if match is None or sample.track_id in self._decided or sample.track_id in self._ended:
                continue
            key = (match.list_name, match.subject_id)
            evidence = self._evidence.setdefault(sample.track_id, _Evidence())
            evidence.matching_frames[key] += 1
            if key not in evidence.best or match.distance < evidence.best[key].distance:
                evidence.best[key] = match
            (leader, count), *rest = evidence.matching_frames.most_common(2)
            runner_up = rest[0][1] if rest else 0
            confident = count >= self._config.min_matching_frames and count > runner_up
            strong = match.distance <= self._config.strong_distance
            if not (confident or (strong and leader == key)):
                continue
            self._decided.add(sample.track_id)
            del self._evidence[sample.track_id]
            decision = AlertDecision(sample, evidence.best[key], count)
            if match.list_name == AT_RISK_LIST:
                self._identified_at_risk[sample.track_id] = decision
                if sample.track_id in self._crossed_out:
                    decisions += self._alert(decision, "elder_leaving")
            else:
                decisions += self._alert(decision, "face_match")
        return decisions

    def crossings(self, crossed: dict[int, str]) -> list[AlertDecision]:
        """Tracks that crossed the gate line this pass ("out" or "in")."""
        decisions = []
        for track_id, direction in crossed.items():
            if direction != "out" or track_id in self._ended:
                continue
            self._crossed_out.add(track_id)
            if track_id in self._identified_at_risk:
                decisions += self._alert(self._identified_at_risk[track_id], "elder_leaving")
        return decisions

    def _alert(self, decision: AlertDecision, kind: str) -> list[AlertDecision]:
        sample, match = decision.sample, decision.match
        if kind == "elder_leaving":
            self._identified_at_risk.pop(sample.track_id, None)
            if self._hours and not _within(self._hours, sample.ts):
                return []
        key = (match.list_name, match.subject_id)
        last = self._last_alert_ts.get(key)
        if last is not None and sample.ts - last < self._config.subject_cooldown_s:
            return []  # same person, same pass: the track is settled without a second alert
        self._last_alert_ts[key] = sample.ts
        return [AlertDecision(sample, match, decision.matching_frames, kind)]

    @property
    def decided_tracks(self) -> frozenset[int]:
        return frozenset(self._decided)

    @property
    def promising_tracks(self) -> frozenset[int]:
        """Undecided tracks with at least one matching sample: worth looking at again soon."""
        return frozenset(self._evidence)

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self._evidence.pop(track_id, None)
            self._decided.discard(track_id)
            self._identified_at_risk.pop(track_id, None)
            self._crossed_out.discard(track_id)
            self._ended[track_id] = None
        while len(self._ended) > MAX_REMEMBERED_ENDS:
            del self._ended[next(iter(self._ended))]
