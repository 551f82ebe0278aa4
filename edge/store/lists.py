"""The box's local list store: enrolled subjects and their face embeddings, in SQLite.

SQLite gives atomic multi-row writes, so an enrolment either lands whole or not at all and a
power cut never leaves half a subject behind.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.errors import GateboxError
from edge.recognition.embedder import EMBEDDING_SIZE
from edge.recognition.gallery import Gallery

SCHEMA = """
CREATE TABLE IF NOT EXISTS subjects (
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    name        TEXT,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (list_name, subject_id)
);
CREATE TABLE IF NOT EXISTS face_embeddings (
    id          INTEGER PRIMARY KEY,
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    embedding   BLOB NOT NULL,
    source      TEXT NOT NULL,
    FOREIGN KEY (list_name, subject_id) REFERENCES subjects (list_name, subject_id) ON DELETE CASCADE
);
"""


@dataclass(frozen=True)
class Subject:
    list_name: str
    subject_id: str
    name: str | None
    embeddings: int


class ListStore:
    def __init__(self, data_dir: Path) -> None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(data_dir / "lists.sqlite3", isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise GateboxError(f"cannot open the list store in {data_dir}: {e}") from None

    def close(self) -> None:
        self._db.close()

    def enroll(
        self,
        list_name: str,
        subject_id: str,
        name: str | None,
        embeddings: npt.NDArray[np.float32],
        sources: Sequence[str],
    ) -> None:
        """Add embeddings to a subject (created if new) in one transaction."""
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != EMBEDDING_SIZE:
            raise ValueError(f"embeddings must be (N, {EMBEDDING_SIZE}), got {embeddings.shape}")
        if len(embeddings) != len(sources):
            raise ValueError("one source per embedding")
        rows = [
            (list_name, subject_id, np.asarray(e, "<f4").tobytes(), s) for e, s in zip(embeddings, sources, strict=True)
        ]
        with self._transaction():
            self._db.execute(
                "INSERT INTO subjects (list_name, subject_id, name, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (list_name, subject_id) DO UPDATE SET "
                "name = COALESCE(excluded.name, subjects.name), updated_at = excluded.updated_at",
                (list_name, subject_id, name, time.time()),
            )
            self._db.executemany(
                "INSERT INTO face_embeddings (list_name, subject_id, embedding, source) VALUES (?, ?, ?, ?)",
                rows,
            )

    def remove(self, list_name: str, subject_id: str) -> bool:
        with self._transaction():
            cur = self._db.execute(
                "DELETE FROM subjects WHERE list_name = ? AND subject_id = ?", (list_name, subject_id)
            )
        return cur.rowcount > 0

    def subjects(self) -> list[Subject]:
        rows = self._db.execute(
            "SELECT s.list_name, s.subject_id, s.name, COUNT(e.id) FROM subjects s "
            "LEFT JOIN face_embeddings e USING (list_name, subject_id) "
            "GROUP BY s.list_name, s.subject_id ORDER BY s.list_name, s.subject_id"
        ).fetchall()
        return [Subject(*r) for r in rows]

    def gallery(self, lists: Sequence[str] | None = None) -> Gallery:
        """All embeddings of the given lists (all lists when None) as one matrix."""
        query = "SELECT list_name, subject_id, embedding FROM face_embeddings"
        params: tuple[str, ...] = ()
        if lists is not None:
            query += f" WHERE list_name IN ({','.join('?' * len(lists))})"
            params = tuple(lists)
        rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        if not rows:
            return Gallery()
        matrix = np.frombuffer(b"".join(r[2] for r in rows), "<f4").reshape(-1, EMBEDDING_SIZE)
        return Gallery(matrix.astype(np.float32), tuple(r[0] for r in rows), tuple(r[1] for r in rows))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
