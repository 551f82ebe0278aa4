"""How strong a match is, in words an officer can act on, from what the alert carries.

A face alert carries `distance`, the best embedding distance of the track to the subject (`score`
is only 1 - distance). The box raised it because that distance, over enough frames, was under its
`match_distance`; at or below `strong_distance` one view decides on its own. The console puts the
distance against those same thresholds (`console.match_thresholds`, per list
`console.list_match_thresholds`; the ONNX embedder's own with `recognition.embedder: onnx`):

- strong: at or below strong_distance: as close as the box trusts a single view;
- good: in the closer half of the way from strong_distance to match_distance;
- weak: in the farther half (or beyond match_distance): the box alerted on repeated borderline
  views; compare the photos before acting.

A plate alert is exact (the plate as read is the listed one) or fuzzy (it matched only up to
confusable characters such as 0/D, 8/B). Nothing here is a probability: the words say where the
distance fell, and the explanation gives the numbers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from centre.config import MatchThresholds

FACE_KINDS = ("face_match", "elder_leaving")
Level = Literal["strong", "good", "weak"]


class MatchStrength(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Level = Field(description="strong, good or weak: where the distance fell against the thresholds.")
    label: str = Field(description="What the page shows, e.g. `strong match`.")
    why: str = Field(description="The numbers behind it.")


def face_strength(distance: float, thresholds: MatchThresholds) -> MatchStrength:
    strong, limit = thresholds.strong_distance, thresholds.match_distance
    numbers = f"distance {distance:.2f}; the box's strong limit {strong:.2f}, match limit {limit:.2f}"
    if distance <= strong:
        return MatchStrength(level="strong", label="strong match", why=f"{numbers}: one such view decides alone")
    if distance <= strong + (limit - strong) / 2:
        return MatchStrength(level="good", label="good match", why=f"{numbers}: in the closer half")
    return MatchStrength(
        level="weak", label="weak match", why=f"{numbers}: near the match limit, compare the photos before acting"
    )


def plate_strength(plate: str | None, read: str | None) -> MatchStrength:
    if read is None or read == plate:
        return MatchStrength(level="strong", label="exact plate", why=f"read {read or plate}: the listed plate")
    return MatchStrength(
        level="weak", label="fuzzy plate read",
        why=f"read {read}, listed {plate}: alike only up to confusable characters; check the plate",
    )  # fmt: skip


def match_strength(event: dict[str, object], thresholds: MatchThresholds) -> MatchStrength | None:
    """The strength of an alert as the console shows it (from `CentreStore` rows); None for a panic or an
    alert that carries no distance."""
    kind = event.get("kind")
    if kind == "plate_match":
        plate, read = event.get("plate"), event.get("plate_read")
        return plate_strength(plate if isinstance(plate, str) else None, read if isinstance(read, str) else None)
    distance = event.get("distance")
    if kind in FACE_KINDS and isinstance(distance, (int, float)) and not isinstance(distance, bool):
        return face_strength(float(distance), thresholds)
    return None
