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
class ListedPlate:
    """Whose a listed plate is: the list, the subject on it, and the list's version."""

    list_name: str
    subject_id: str
    list_version: str  # "local" or "v<N>" (the centre's version)


@dataclass(frozen=True)
class PlateMatch:
    list_name: str
    subject_id: str
    list_version: str
    plate: str  # as listed
    distance: float  # 0 for an exact match

    @classmethod
    def of(cls, listed: ListedPlate, plate: str, distance: float) -> PlateMatch:
        return cls(listed.list_name, listed.subject_id, listed.list_version, plate, distance)

    @property
    def fuzzy(self) -> bool:
        return self.distance > 0


class PlateMatcher:
    def __init__(self, plates: Mapping[str, ListedPlate], max_distance: float) -> None:
        """`plates`: each listed plate (normalised) and whose it is."""
        self._plates = dict(plates)
        self._max_distance = max_distance

    def __len__(self) -> int:
        return len(self._plates)

    def match(self, read: str) -> PlateMatch | None:
        if read in self._plates:
            return PlateMatch.of(self._plates[read], read, 0.0)
        if self._max_distance <= 0:
            return None
        best = min(((distance(read, p), p) for p in self._plates), default=(float("inf"), ""))
        if best[0] > self._max_distance:
            return None
        return PlateMatch.of(self._plates[best[1]], best[1], best[0])
