"""1:N matching for the decision stage: each face's nearest enrolled subject, and how far the next
other subject is (a sample as near to two people says little about either)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.recognition.gallery import Gallery
from edge.types import Match

NEAREST_ROWS = 16  # rows looked at per face for the runner-up; a subject rarely has more photos than this


def nearest_subjects(gallery: Gallery, queries: npt.NDArray[np.float32], max_distance: float) -> list[Match | None]:
    """Per query: the nearest subject within `max_distance` (None otherwise), with `runner_up_distance`
    the nearest row of any other subject among the `NEAREST_ROWS` nearest rows (else at least the
    farthest of those)."""
    if len(gallery) == 0:
        return [None] * len(queries)
    distances = gallery.distances(queries)
    keep = min(NEAREST_ROWS, distances.shape[1])
    nearest = np.argpartition(distances, keep - 1, axis=1)[:, :keep]
    matches: list[Match | None] = []
    for row, candidates in zip(distances, nearest, strict=True):
        order = candidates[np.argsort(row[candidates])]
        best = int(order[0])
        if row[best] >= max_distance:
            matches.append(None)
            continue
        key = (gallery.list_names[best], gallery.subject_ids[best])
        others = [j for j in order[1:] if (gallery.list_names[j], gallery.subject_ids[j]) != key]
        # When every near row is this subject, the others are at least as far as the last of them.
        farthest_near = float(row[order[-1]]) if keep < len(gallery) else float("inf")
        runner_up = float(row[others[0]]) if others else farthest_near
        version = gallery.versions[best] if gallery.versions else "local"
        matches.append(Match(key[0], key[1], float(row[best]), version, runner_up))
    return matches
