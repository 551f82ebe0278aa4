"""Plate list matching: exact, or fuzzy over characters a reader confuses (0/D/Q, 8/B, 2/Z, 5/S, 1/I)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CONFUSABLE = [set("0DQ"), set("8B"), set("2Z"), set("5S"), set("1I")]


def confusable(a: str, b: str) -> bool:
    return any(a in group and b in group for group in CONFUSABLE)


def distance(read: str, listed: str) -> float:
    """Same-length substitution distance: a confusable pair costs 0.5, any other difference 1."""
    if len(read) != len(listed):
        return float("inf")
    return sum(0.0 if r == ls else 0.5 if confusable(r, ls) else 1.0 for r, ls in zip(read, listed, strict=True))


@dataclass(frozen=True)
class PlateMatch:
    list_name: str
    subject_id: str
    list_version: str
    plate: str  # as listed
    distance: float  # 0 for an exact match

    @property
    def fuzzy(self) -> bool:
        return self.distance > 0


class PlateMatcher:
    def __init__(self, plates: Mapping[str, tuple[str, str, str]], max_distance: float) -> None:
        """`plates`: listed plate -> (list name, subject id, list version)."""
        self._plates = dict(plates)
        self._max_distance = max_distance

    def __len__(self) -> int:
        return len(self._plates)

    def match(self, read: str) -> PlateMatch | None:
        if read in self._plates:
            return PlateMatch(*self._plates[read], read, 0.0)
        if self._max_distance <= 0:
            return None
        best = min(((distance(read, p), p) for p in self._plates), default=(float("inf"), ""))
        if best[0] > self._max_distance:
            return None
        return PlateMatch(*self._plates[best[1]], best[1], best[0])
