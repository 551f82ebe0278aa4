from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge.store.lists import ListStore


def test_enrol_adds_to_a_subject_and_survives_reopening(tmp_path: Path) -> None:
    store = ListStore(tmp_path)
    store.enroll("watchlist", "s1", "Sam", np.ones((2, 128), np.float32), ["a.jpg", "b.jpg"])
    store.enroll("watchlist", "s1", None, np.zeros((1, 128), np.float32), ["c.jpg"])
    store.enroll("missing_elders", "e1", "Eve", np.full((1, 128), 0.5, np.float32), ["e.jpg"])
    store.close()

    reopened = ListStore(tmp_path)
    assert [(s.list_name, s.subject_id, s.name, s.embeddings) for s in reopened.subjects()] == [
        ("missing_elders", "e1", "Eve", 1),
        ("watchlist", "s1", "Sam", 3),
    ]
    gallery = reopened.gallery(["watchlist"])
    assert gallery.subject_ids == ("s1", "s1", "s1") and gallery.embeddings.shape == (3, 128)
    assert np.array_equal(gallery.embeddings[2], np.zeros(128))
    assert len(reopened.gallery()) == 4


def test_a_failed_enrolment_writes_nothing(tmp_path: Path) -> None:
    store = ListStore(tmp_path)
    store.enroll("watchlist", "s1", None, np.ones((1, 128), np.float32), ["a.jpg"])
    with pytest.raises(ValueError):
        store.enroll("watchlist", "s2", None, np.ones((2, 127), np.float32), ["b.jpg", "c.jpg"])
    with pytest.raises(sqlite3.Error):  # fails after the subject row is written: rolled back
        # A photo name SQLite cannot bind, on purpose: the second row fails.
        store.enroll("watchlist", "s3", None, np.ones((2, 128), np.float32), ["b.jpg", ["not", "text"]])  # type: ignore[list-item]
    assert [s.subject_id for s in store.subjects()] == ["s1"]
    assert len(store.gallery()) == 1


def test_remove_drops_the_subject_and_its_faces(tmp_path: Path) -> None:
    store = ListStore(tmp_path)
    store.enroll("watchlist", "s1", None, np.ones((2, 128), np.float32), ["a.jpg", "b.jpg"])
    assert store.remove("watchlist", "s1") and not store.remove("watchlist", "s1")
    assert store.subjects() == [] and len(store.gallery()) == 0


def test_a_store_made_by_the_first_release_is_migrated(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "lists.sqlite3")
    old.executescript(
        "CREATE TABLE subjects (list_name TEXT NOT NULL, subject_id TEXT NOT NULL, name TEXT, updated_at REAL NOT NULL,"
        " PRIMARY KEY (list_name, subject_id));"
        "CREATE TABLE face_embeddings (id INTEGER PRIMARY KEY, list_name TEXT NOT NULL, subject_id TEXT NOT NULL,"
        " embedding BLOB NOT NULL, source TEXT NOT NULL);"
        "INSERT INTO subjects VALUES ('watchlist', 's1', 'Old', 0);"
    )
    old.execute("INSERT INTO face_embeddings VALUES (1, 'watchlist', 's1', ?, 'a.jpg')", (bytes(512),))
    old.commit()
    old.close()
    store = ListStore(tmp_path)
    assert [(s.subject_id, s.name, s.origin, s.embeddings) for s in store.subjects()] == [("s1", "Old", "local", 1)]
    assert len(store.gallery()) == 1 and store.versions() == {}
