"""Decision stage: weighs every sample of a track and raises at most one alert per person per pass.

Each sample (one embedded view of the track) counts for the subject it is nearest to when it is
within that subject's list's `match_distance` and clear of every other subject by `min_margin`;
otherwise it counts for nobody. A track alerts for a subject when, among its last
`evidence_window` samples, at least `min_matching_frames` count for that subject and more than for
any other (k of n), or when one sample is within `strong_distance`. Each list has its own
operating point (`recognition.operating_points`): missing elders favour recall, the watchlist
precision. Lists of kind `leaving-only` (config `lists`) alert only when the identified person
crosses the gate line outwards; such an alert shows the crossing (its frame, time, box and face at
the line), whichever came first, the crossing or the recognition. A lone fluke sample never
alerts, and a track that matched early but has since been seen clearly not to match does not alert
on its old samples.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from edge.config import RecognitionConfig, ResolvedOperatingPoint
from edge.types import AlertDecision, FaceAlertKind, FaceObservation, FaceSample, GateCrossing, Match

MAX_REMEMBERED_ENDS = 4096
MAX_WINDOW = 64  # samples kept per track: the longest evidence window any list may ask for
PROMISING_WINDOW = 8  # a track with a counting sample among its last this many is worth extra looks


def _parse_hours(text: str | None) -> tuple[int, int] | None:
    """`HH:MM-HH:MM` -> (start, end) minutes of the day."""
    if not text:
        return None
    start, end = (int(h) * 60 + int(m) for h, m in (part.split(":") for part in text.split("-")))
    return start, end


def _within(hours: tuple[int, int], ts: float) -> bool:
    """Whether `ts` (box local time) falls in `hours`. Both ends are whole minutes and included, as a
    person reads `22:00-06:00` or `00:00-23:59` (all day); a start after the end wraps midnight."""
    local = time.localtime(ts)
    minute = local.tm_hour * 60 + local.tm_min
    start, end = hours
    return start <= minute <= end if start <= end else minute >= start or minute <= end


Subject = tuple[str, str]  # (list name, subject id)


@dataclass
class _Evidence:
    counted: deque[Subject | None] = field(default_factory=lambda: deque(maxlen=MAX_WINDOW))  # per sample
    distances: dict[Subject, list[float]] = field(default_factory=dict)  # every sample nearest to a subject
    best: dict[Subject, Match] = field(default_factory=dict)

    def count(self, subject: Subject, window: int) -> tuple[int, int]:
        """Samples counting for `subject` among the last `window`, and the most for any other subject."""
        recent = list(self.counted)[-window:]
        others: dict[Subject, int] = {}
        for key in recent:
            if key is not None and key != subject:
                others[key] = others.get(key, 0) + 1
        return recent.count(subject), max(others.values(), default=0)


class AlertDecider:
    """Track-level evidence to alerts (see the module docstring). A subject that alerted on this
    camera does not alert again within `subject_cooldown_s` (a track broken by an occluder is
    still the same pass)."""

    def __init__(self, config: RecognitionConfig, leaving_only: Collection[str] = ()) -> None:
        """`leaving_only`: the lists whose subjects alert only on leaving (`GateboxConfig.lists_of_kind`)."""
        self._config = config
        self._leaving_only = frozenset(leaving_only)
        self._points: dict[str, ResolvedOperatingPoint] = {}
        self._hours = _parse_hours(config.at_risk_hours)
        self._evidence: dict[int, _Evidence] = {}
        # Subjects of leaving-only lists (at-risk elders) alert only on leaving: identity and an outward
        # crossing of the same track, in either order. The alert shows the crossing (the face at the line).
        self._identified_at_risk: dict[int, AlertDecision] = {}
        self._crossed_out: dict[int, FaceSample] = {}  # track -> its face as it last crossed outwards
        self._decided: set[int] = set()
        # Embeddings run behind the tracker, so a sample can arrive after its track ended;
        # remembering recent ends keeps such stragglers from reopening the track.
        self._ended: dict[int, None] = {}
        self._last_alert_ts: dict[tuple[str, str], float] = {}

    def _point(self, list_name: str) -> ResolvedOperatingPoint:
        if list_name not in self._points:
            self._points[list_name] = self._config.operating_point(list_name)
        return self._points[list_name]

    def update(self, observations: Sequence[FaceObservation]) -> list[AlertDecision]:
        """Weigh new samples (every one embedded, matched or not); returns the alerts they decide."""
        decisions = []
        for obs in observations:
            sample, match = obs.sample, obs.match
            if sample.track_id in self._decided or sample.track_id in self._ended:
                continue
            evidence = self._evidence.setdefault(sample.track_id, _Evidence())
            if match is None:
                evidence.counted.append(None)  # looked at, nobody near: weighs against every subject
                continue
            key = (match.list_name, match.subject_id)
            point = self._point(match.list_name)
            evidence.distances.setdefault(key, []).append(match.distance)
            counts = match.distance < point.match_distance and (
                match.runner_up_distance - match.distance >= point.min_margin
            )
            evidence.counted.append(key if counts else None)
            if not counts:
                continue
            if key not in evidence.best or match.distance < evidence.best[key].distance:
                evidence.best[key] = match
            hits, others = evidence.count(key, point.evidence_window)
            confident = hits >= point.min_matching_frames and hits > others
            strong = match.distance <= point.strong_distance and hits > others
            if not (confident or strong):
                continue
            self._decided.add(sample.track_id)
            del self._evidence[sample.track_id]
            decision = AlertDecision(sample, evidence.best[key], hits)
            if match.list_name in self._leaving_only:
                self._identified_at_risk[sample.track_id] = decision
                if sample.track_id in self._crossed_out:
                    decisions += self._leaving(decision, self._crossed_out[sample.track_id])
            else:
                decisions += self._alert(decision, "face_match")
        return decisions

    def crossings(self, crossed: Mapping[int, GateCrossing]) -> list[AlertDecision]:
        """Tracks that crossed the gate line this pass, each with its face at the line."""
        decisions = []
        for track_id, crossing in crossed.items():
            if crossing.direction != "out" or track_id in self._ended:
                continue
            self._crossed_out[track_id] = crossing.view
            if track_id in self._identified_at_risk:
                decisions += self._leaving(self._identified_at_risk[track_id], crossing.view)
        return decisions

    def _leaving(self, decision: AlertDecision, at_line: FaceSample) -> list[AlertDecision]:
        """An identified at-risk subject crossed outwards: the alert shows the crossing (`at_line`),
        the moment a dispatcher needs, with the track's identity and evidence."""
        self._identified_at_risk.pop(decision.sample.track_id, None)
        if self._hours and not _within(self._hours, at_line.ts):
            return []  # left outside the at-risk hours
        return self._alert(AlertDecision(at_line, decision.match, decision.matching_frames), "elder_leaving")

    def _alert(self, decision: AlertDecision, kind: FaceAlertKind) -> list[AlertDecision]:
        sample, match = decision.sample, decision.match
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
        """Undecided tracks with a sample counting for someone among their recent ones: worth looking at again soon."""
        return frozenset(
            track for track, evidence in self._evidence.items() if any(list(evidence.counted)[-PROMISING_WINDOW:])
        )

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self._evidence.pop(track_id, None)
            self._decided.discard(track_id)
            self._identified_at_risk.pop(track_id, None)
            self._crossed_out.pop(track_id, None)
            self._ended[track_id] = None
        while len(self._ended) > MAX_REMEMBERED_ENDS:
            del self._ended[next(iter(self._ended))]
