"""The enrolled faces of every list as one matrix, searched 1:N with numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.recognition.embedder import EMBEDDING_SIZE
from edge.types import Match


@dataclass(frozen=True)
class Gallery:
    """Row i of `embeddings` belongs to subject `subject_ids[i]` of list `list_names[i]`."""

    embeddings: npt.NDArray[np.float32] = field(default_factory=lambda: np.empty((0, EMBEDDING_SIZE), np.float32))
    list_names: tuple[str, ...] = ()
    subject_ids: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()  # per row: "local" (enrolled on the box) or "v<N>" (centre version)

    def __post_init__(self) -> None:
        # Squared norms of the enrolled rows, once: at 100k identities they cost as much as the product.
        object.__setattr__(self, "_sq_norms", (self.embeddings.astype(np.float32) ** 2).sum(1))
        if not (len(self.embeddings) == len(self.list_names) == len(self.subject_ids)):
            raise ValueError("gallery rows, list names and subject ids must have the same length")
        if self.versions and len(self.versions) != len(self.subject_ids):
            raise ValueError("one version per gallery row")

    def __len__(self) -> int:
        return len(self.embeddings)

    def distances(self, queries: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Euclidean distance of every query (rows) to every enrolled embedding (columns)."""
        q = np.asarray(queries, np.float32).reshape(-1, EMBEDDING_SIZE)
        # |q-g|^2 = |q|^2 - 2 q.g + |g|^2: one matrix product instead of a loop over subjects.
        sq = (q * q).sum(1)[:, None] - 2.0 * q @ self.embeddings.T + self._sq_norms[None, :]
        return np.sqrt(np.maximum(sq, 0.0))

    def nearest(self, queries: npt.NDArray[np.float32], max_distance: float) -> list[Match | None]:
        """The nearest enrolled subject of each query, or None when none is within `max_distance`."""
        if len(self) == 0:
            return [None] * len(queries)
        dist = self.distances(queries)
        best = dist.argmin(axis=1)
        best_dist = dist[np.arange(len(best)), best]
        return [
            Match(self.list_names[j], self.subject_ids[j], float(d), self.versions[j] if self.versions else "local")
            if d < max_distance
            else None
            for j, d in zip(best.tolist(), best_dist.tolist(), strict=True)
        ]
