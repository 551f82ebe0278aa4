"""List bundles and their application to the store: encode/decode, deltas, version continuity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from centre.lists import delta_blob
from edge.protocol.bundle import BundleError, ListEntry, decode, encode
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


def test_plate_list_from_real_ground_truth(tmp_path: Path, shared_data: Path) -> None:
    from centre.lists import build_plates, read_bundle

    source = shared_data / "plates_cn" / "hyperlpr" / "ground_truth.csv"
    assert build_plates("plate_watchlist", 4, source, tmp_path / "plates.gbl") == 4
    _, version, blob = read_bundle(tmp_path / "plates.gbl")
    data = decode(blob, "full")
    store = ListStore(tmp_path / "box")
    store.apply_update("plate_watchlist", version, None, data.entries, data.matrix)
    expected = {line.split(",")[1] for line in source.read_text(encoding="utf-8").splitlines()[1:]}
    assert set(store.plates()) == expected and "津B6H920" in expected
    assert len(store.gallery()) == 0  # plates never enter the face gallery


@pytest.mark.parametrize(
    ("fields", "ok"),
    [({"embeddings": 1}, True), ({"plate": "粤B12345"}, True), ({}, False),
     ({"embeddings": 1, "plate": "粤B12345"}, False), ({"plate": "粤B 12345"}, False)],
)  # fmt: skip
def test_entry_is_a_face_or_a_plate(fields: dict, ok: bool) -> None:
    if ok:
        ListEntry(subject_id="x", **fields)
    else:
        with pytest.raises(ValueError):
            ListEntry(subject_id="x", **fields)
