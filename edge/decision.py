"""Decision stage: turns per-frame matches of a track into at most one alert per person per pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from edge.config import RecognitionConfig
from edge.types import AlertDecision, FaceObservation, Frame, Match


@dataclass
class _Evidence:
    matching_frames: Counter[tuple[str, str]] = field(default_factory=Counter)
    best: dict[tuple[str, str], Match] = field(default_factory=dict)


class AlertDecider:
    """A track alerts once, when `min_matching_frames` of its frames matched the same subject or one
    frame matched within `strong_distance`; a lone fluke frame never alerts. A subject that alerted
    on this camera does not alert again within `subject_cooldown_s` (a track broken by an occluder
    is still the same pass)."""

    def __init__(self, config: RecognitionConfig) -> None:
        self._config = config
        self._evidence: dict[int, _Evidence] = {}
        self._decided: set[int] = set()
        self._last_alert_ts: dict[tuple[str, str], float] = {}

    def update(self, frame: Frame, observations: Iterable[FaceObservation]) -> list[AlertDecision]:
        decisions = []
        for obs in observations:
            if obs.match is None or obs.track_id in self._decided:
                continue
            key = (obs.match.list_name, obs.match.subject_id)
            evidence = self._evidence.setdefault(obs.track_id, _Evidence())
            evidence.matching_frames[key] += 1
            if key not in evidence.best or obs.match.distance < evidence.best[key].distance:
                evidence.best[key] = obs.match
            (leader, count), *rest = evidence.matching_frames.most_common(2)
            runner_up = rest[0][1] if rest else 0
            confident = count >= self._config.min_matching_frames and count > runner_up
            strong = obs.match.distance <= self._config.strong_distance
            if not (confident or (strong and leader == key)):
                continue
            self._decided.add(obs.track_id)
            last = self._last_alert_ts.get(key)
            if last is not None and frame.ts - last < self._config.subject_cooldown_s:
                continue  # same person, same pass: the track is settled without a second alert
            self._last_alert_ts[key] = frame.ts
            decisions.append(AlertDecision(obs.track_id, evidence.best[key], count, obs.xyxy))
        return decisions

    @property
    def decided_tracks(self) -> frozenset[int]:
        return frozenset(self._decided)

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self._evidence.pop(track_id, None)
            self._decided.discard(track_id)
