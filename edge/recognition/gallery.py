"""The enrolled faces of every list as one matrix, searched 1:N with numpy, and who each listed subject
is (name, category, priority from the list entry), for the alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.protocol.embedding import DLIB_EMBEDDER, EmbedderSpec
from edge.types import Match, SubjectDetails


@dataclass(frozen=True)
class Gallery:
    """Row i of `embeddings` belongs to subject `subject_ids[i]` of list `list_names[i]`; every row was
    made by `embedder`, whose metric (Euclidean or cosine) the distances use."""

    embeddings: npt.NDArray[np.float32] = field(default_factory=lambda: np.empty((0, DLIB_EMBEDDER.dim), np.float32))
    list_names: tuple[str, ...] = ()
    subject_ids: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()  # per row: "local" (enrolled on the box) or "v<N>" (centre version)
    embedder: EmbedderSpec = DLIB_EMBEDDER
    # (list name, subject id) -> who they are, for every subject of the lists in force (plate lists too)
    subjects: Mapping[tuple[str, str], SubjectDetails] = field(default_factory=dict, compare=False)
    # Precomputed by __post_init__ for the embedder's metric only (the other one is never set):
    _unit: npt.NDArray[np.float32] = field(init=False, repr=False, compare=False)  # cosine: unit rows
    _sq_norms: npt.NDArray[np.float32] = field(init=False, repr=False, compare=False)  # Euclidean: |row|^2

    def __post_init__(self) -> None:
        if not (len(self.embeddings) == len(self.list_names) == len(self.subject_ids)):
            raise ValueError("gallery rows, list names and subject ids must have the same length")
        if self.versions and len(self.versions) != len(self.subject_ids):
            raise ValueError("one version per gallery row")
        rows = np.asarray(self.embeddings, np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.embedder.dim:
            raise ValueError(f"gallery rows must be (N, {self.embedder.dim}) for {self.embedder.id}, got {rows.shape}")
        if self.embedder.metric == "cosine":
            # Unit rows, once: a cosine distance is then one matrix product.
            unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            object.__setattr__(self, "_unit", unit.astype(np.float32))
        else:
            # Squared norms of the enrolled rows, once: at 100k identities they cost as much as the product.
            object.__setattr__(self, "_sq_norms", (rows**2).sum(1))

    def __len__(self) -> int:
        return len(self.embeddings)

    def distances(self, queries: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Distance of every query (rows) to every enrolled embedding (columns): Euclidean for dlib,
        cosine distance (1 - cos, 0 to 2) for an ONNX embedder."""
        q = np.asarray(queries, np.float32).reshape(-1, self.embedder.dim)
        if self.embedder.metric == "cosine":
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            cosine: npt.NDArray[np.float32] = np.clip(1.0 - q @ self._unit.T, 0.0, 2.0)
            return cosine
        # |q-g|^2 = |q|^2 - 2 q.g + |g|^2: one matrix product instead of a loop over subjects.
        sq = (q * q).sum(1)[:, None] - 2.0 * q @ self.embeddings.T + self._sq_norms[None, :]
        euclidean: npt.NDArray[np.float32] = np.sqrt(np.maximum(sq, 0.0))
        return euclidean

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
