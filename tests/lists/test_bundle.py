"""List bundles and their application to the store: encode/decode, deltas, version continuity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.centre.lists import delta_blob
from edge.lists.bundle import BundleError, ListEntry, decode, encode
from edge.store.lists import ListStore, VersionConflict


def entries(*subjects: str) -> tuple[list[ListEntry], np.ndarray]:
    rng = np.random.default_rng(len(subjects))
    listed = [ListEntry(subject_id=s, name=s.upper(), embeddings=2) for s in subjects]
    return listed, rng.normal(size=(2 * len(subjects), 128)).astype(np.float32)


def test_round_trip_and_corruption() -> None:
    listed, matrix = entries("a", "b")
    blob = encode(listed, matrix)
    data = decode(blob, "full")
    assert [e.subject_id for e in data.entries] == ["a", "b"] and np.array_equal(data.matrix, matrix)
    with pytest.raises(BundleError, match="GBL1"):
        decode(b"XXXX" + blob[4:], "full")
    with pytest.raises(BundleError, match="embedding matrix"):
        decode(blob[:-4], "full")


def test_delta_then_store(tmp_path: Path) -> None:
    v1 = encode(*entries("a", "b"))
    v2_entries, v2_matrix = entries("b", "c")
    delta = decode(delta_blob(v1, encode(v2_entries, v2_matrix)), "delta")
    assert sorted(delta.remove) == ["a"] and sorted(e.subject_id for e in delta.entries) == ["b", "c"]

    store = ListStore(tmp_path)
    store.enroll("watchlist", "local-1", None, np.zeros((1, 128), np.float32), ["photo.jpg"])
    first = decode(v1, "full")
    store.apply_update("watchlist", 1, None, first.entries, first.matrix)
    with pytest.raises(VersionConflict):
        store.apply_update("watchlist", 3, 2, delta.entries, delta.matrix, delta.remove)
    store.apply_update("watchlist", 2, 1, delta.entries, delta.matrix, delta.remove)
    assert store.versions() == {"watchlist": 2}
    subjects = {(s.subject_id, s.origin, s.embeddings) for s in store.subjects()}
    assert subjects == {("local-1", "local", 1), ("b", "centre", 2), ("c", "centre", 2)}
    gallery = store.gallery()
    assert sorted(set(zip(gallery.subject_ids, gallery.versions, strict=True))) == [
        ("b", "v2"),
        ("c", "v2"),
        ("local-1", "local"),
    ]
