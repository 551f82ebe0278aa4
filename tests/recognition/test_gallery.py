from __future__ import annotations

import numpy as np
import pytest

from edge.recognition.gallery import Gallery


def test_vectorised_distances_equal_the_naive_loop() -> None:
    rng = np.random.default_rng(0)
    enrolled = rng.normal(size=(50, 128)).astype(np.float32) * 0.1
    queries = rng.normal(size=(7, 128)).astype(np.float32) * 0.1
    gallery = Gallery(enrolled, ("watchlist",) * 50, tuple(f"s{i // 2}" for i in range(50)))
    naive = np.array([[np.linalg.norm(q - g) for g in enrolled] for q in queries])
    assert np.allclose(gallery.distances(queries), naive, atol=1e-5)


@pytest.mark.parametrize(("offset", "threshold", "expected"), [(0.01, 0.5, "s2"), (0.3, 0.25, None)])
def test_nearest_respects_the_threshold(offset: float, threshold: float, expected: str | None) -> None:
    enrolled = np.eye(3, 128, dtype=np.float32)
    gallery = Gallery(enrolled, ("watchlist", "watchlist", "missing_elders"), ("s0", "s1", "s2"))
    query = enrolled[2] + offset * np.eye(1, 128, 5, dtype=np.float32)[0]
    (match,) = gallery.nearest(query[None], threshold)
    assert (match.subject_id if match else None) == expected
    if match:
        assert match.list_name == "missing_elders" and match.distance == pytest.approx(offset, abs=1e-4)


def test_empty_gallery_matches_nothing() -> None:
    assert Gallery().nearest(np.zeros((2, 128), np.float32), 0.5) == [None, None]
