"""The box's local list store: enrolled subjects and their face embeddings, in SQLite.

SQLite gives atomic multi-row writes, so an enrolment either lands whole or not at all and a
power cut never leaves half a subject behind. Every face row records the embedder that made it
(rows from before embedder ids are dlib's): a list never mixes two embedders, and a gallery is
only ever built for the embedder the box runs.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.protocol.alert import SUBJECT_CATEGORY_MAX, SUBJECT_NAME_MAX, SUBJECT_PRIORITY_MAX
from edge.protocol.bundle import ListEntry
from edge.protocol.embedding import DLIB_EMBEDDER, EmbedderMismatch, EmbedderSpec
from edge.protocol.sqlite import Migration, Schema, add_columns, open_database, transaction
from edge.recognition.gallery import Gallery
from edge.types import SubjectDetails

TABLES = """
CREATE TABLE IF NOT EXISTS subjects (
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    name        TEXT,
    updated_at  REAL NOT NULL,
    origin      TEXT NOT NULL DEFAULT 'local',  -- 'local' (gatebox enroll) or 'centre' (synced list)
    category    TEXT,
    priority    INTEGER NOT NULL DEFAULT 0,
    expires_at  REAL,
    plate       TEXT,                           -- plate lists: the normalised plate text
    PRIMARY KEY (list_name, subject_id)
);
CREATE TABLE IF NOT EXISTS list_versions (
    list_name   TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    applied_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS face_embeddings (
    id          INTEGER PRIMARY KEY,
    list_name   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    embedding   BLOB NOT NULL,
    source      TEXT NOT NULL,
    embedder    TEXT NOT NULL DEFAULT 'dlib-resnet-v1',  -- the EmbedderSpec id that made the row
    FOREIGN KEY (list_name, subject_id) REFERENCES subjects (list_name, subject_id) ON DELETE CASCADE
);
"""


# Versions before schema versions added columns in place: an unversioned database may lack them.
SCHEMA = Schema(
    Migration("the list store", TABLES),
    Migration("synced and plate lists", add_columns("subjects", {
        "origin": "TEXT NOT NULL DEFAULT 'local'",
        "category": "TEXT",
        "priority": "INTEGER NOT NULL DEFAULT 0",
        "expires_at": "REAL",
        "plate": "TEXT",
    })),
    # Rows from before embedder ids are dlib's.
    Migration("embedder ids", add_columns("face_embeddings", {
        "embedder": f"TEXT NOT NULL DEFAULT '{DLIB_EMBEDDER.id}'",
    })),
)  # fmt: skip


@dataclass(frozen=True)
class Subject:
    list_name: str
    subject_id: str
    name: str | None
    embeddings: int
    origin: str = "local"
    plate: str | None = None


class VersionConflict(ValueError):
    """A delta whose base is not the version the box holds."""


class ListStore:
    def __init__(self, data_dir: Path) -> None:
        self._db = open_database(data_dir / "lists.sqlite3", SCHEMA, "the list store", foreign_keys=True)

    def close(self) -> None:
        self._db.close()

    def enroll(
        self,
        list_name: str,
        subject_id: str,
        name: str | None,
        embeddings: npt.NDArray[np.float32],
        sources: Sequence[str],
        embedder: EmbedderSpec = DLIB_EMBEDDER,
    ) -> None:
        """Add embeddings (made by `embedder`) to a subject (created if new) in one transaction."""
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != embedder.dim:
            raise ValueError(f"embeddings of {embedder.id} must be (N, {embedder.dim}), got {embeddings.shape}")
        if len(embeddings) != len(sources):
            raise ValueError("one source per embedding")
        rows = [
            (list_name, subject_id, np.asarray(e, "<f4").tobytes(), s, embedder.id)
            for e, s in zip(embeddings, sources, strict=True)
        ]
        with transaction(self._db):
            self._refuse_other_embedders(list_name, embedder, "enrolling")
            self._db.execute(
                "INSERT INTO subjects (list_name, subject_id, name, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (list_name, subject_id) DO UPDATE SET origin = 'local', "
                "name = COALESCE(excluded.name, subjects.name), updated_at = excluded.updated_at",
                (list_name, subject_id, name, time.time()),
            )
            self._db.executemany(
                "INSERT INTO face_embeddings (list_name, subject_id, embedding, source, embedder) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def remove(self, list_name: str, subject_id: str) -> bool:
        with transaction(self._db):
            cur = self._db.execute(
                "DELETE FROM subjects WHERE list_name = ? AND subject_id = ?", (list_name, subject_id)
            )
        return cur.rowcount > 0

    def subjects(self) -> list[Subject]:
        rows = self._db.execute(
            "SELECT s.list_name, s.subject_id, s.name, COUNT(e.id), s.origin, s.plate FROM subjects s "
            "LEFT JOIN face_embeddings e USING (list_name, subject_id) "
            "GROUP BY s.list_name, s.subject_id ORDER BY s.list_name, s.subject_id"
        ).fetchall()
        return [Subject(*r) for r in rows]

    def plates(self, lists: Collection[str] | None = None) -> dict[str, tuple[str, str]]:
        """Unexpired plates of plate lists: plate text -> (list name, subject id)."""
        query = "SELECT plate, list_name, subject_id FROM subjects WHERE plate IS NOT NULL"
        query += " AND (expires_at IS NULL OR expires_at > ?)"
        params: tuple[object, ...] = (time.time(),)
        if lists is not None:
            query += f" AND list_name IN ({','.join('?' * len(lists))})"
            params += tuple(lists)
        return {plate: (list_name, subject) for plate, list_name, subject in self._db.execute(query, params)}

    def versions(self) -> dict[str, int]:
        """The centre version each synced list is at."""
        return dict(self._db.execute("SELECT list_name, version FROM list_versions").fetchall())

    def apply_update(
        self,
        list_name: str,
        version: int,
        base_version: int | None,
        entries: Sequence[ListEntry],
        matrix: npt.NDArray[np.float32],
        remove: Sequence[str] = (),
        embedder: EmbedderSpec | None = DLIB_EMBEDDER,
    ) -> None:
        """Apply a centre list (full when `base_version` is None, else a delta) in one transaction.

        A full list replaces every centre entry of the list; a delta adds/replaces `entries` and
        drops `remove`, and only applies on top of `base_version`. Locally enrolled subjects stay.
        `embedder` made the face rows (None when there are none); EmbedderMismatch, and nothing
        changes, when what stays of the list was made by another.
        """
        now = time.time()
        made_by = embedder or DLIB_EMBEDDER
        rows, offset = [], 0
        for entry in entries:
            for e in matrix[offset : offset + entry.embeddings]:
                rows.append((list_name, entry.subject_id, np.asarray(e, "<f4").tobytes(), f"centre:v{version}",
                             made_by.id))  # fmt: skip
            offset += entry.embeddings
        with transaction(self._db):
            current = self._db.execute("SELECT version FROM list_versions WHERE list_name = ?", (list_name,)).fetchone()
            if base_version is not None and (current is None or current[0] != base_version):
                raise VersionConflict(
                    f"delta to v{version} applies to v{base_version}, but the box holds "
                    f"{'no version' if current is None else f'v{current[0]}'} of {list_name}"
                )
            if base_version is None:
                self._db.execute("DELETE FROM subjects WHERE list_name = ? AND origin = 'centre'", (list_name,))
            else:
                self._db.executemany(
                    "DELETE FROM subjects WHERE list_name = ? AND subject_id = ? AND origin = 'centre'",
                    [(list_name, s) for s in [*remove, *(e.subject_id for e in entries)]],
                )
            self._db.executemany(
                "INSERT OR REPLACE INTO subjects (list_name, subject_id, name, updated_at, origin, category, "
                "priority, expires_at, plate) VALUES (?, ?, ?, ?, 'centre', ?, ?, ?, ?)",
                [(list_name, e.subject_id, e.name, now, e.category, e.priority,
                  e.expires_at.timestamp() if e.expires_at else None, e.plate) for e in entries],
            )  # fmt: skip
            if rows:
                self._refuse_other_embedders(list_name, made_by, f"applying v{version} of")
            self._db.executemany(
                "INSERT INTO face_embeddings (list_name, subject_id, embedding, source, embedder) "
                "VALUES (?, ?, ?, ?, ?)", rows,
            )  # fmt: skip
            self._db.execute(
                "INSERT OR REPLACE INTO list_versions (list_name, version, applied_at) VALUES (?, ?, ?)",
                (list_name, version, now),
            )

    def embedders(self, lists: Collection[str] | None = None) -> dict[str, dict[str, int]]:
        """Face rows per list and embedder id: {list: {embedder id: rows}}."""
        query = "SELECT list_name, embedder, COUNT(*) FROM face_embeddings"
        params: tuple[object, ...] = ()
        if lists is not None:
            query += f" WHERE list_name IN ({','.join('?' * len(lists))})"
            params = tuple(lists)
        out: dict[str, dict[str, int]] = {}
        for list_name, embedder, count in self._db.execute(query + " GROUP BY list_name, embedder", params):
            out.setdefault(list_name, {})[embedder] = count
        return out

    def gallery(self, lists: Collection[str] | None = None, embedder: EmbedderSpec = DLIB_EMBEDDER) -> Gallery:
        """All unexpired embeddings of the given lists (all lists when None) as one matrix, for the
        box's `embedder`; EmbedderMismatch when any of those lists holds faces made by another."""
        foreign = {
            name: {e: n for e, n in counts.items() if e != embedder.id}
            for name, counts in self.embedders(lists).items()
        }
        foreign = {name: counts for name, counts in foreign.items() if counts}
        if foreign:
            held = "; ".join(f"{name}: " + ", ".join(f"{n} made by {e}" for e, n in sorted(counts.items()))
                             for name, counts in sorted(foreign.items()))  # fmt: skip
            raise EmbedderMismatch(
                f"the list store holds faces embedded by another embedder than the configured one ({embedder.id}): "
                f"{held}. Embeddings of two embedders cannot be compared. Either set recognition.embedder back, "
                "or re-enrol those subjects with this embedder (gatebox lists remove, then gatebox enroll) and "
                "have the centre rebuild its lists with it"
            )
        query = (
            "SELECT e.list_name, e.subject_id, e.embedding, s.origin, v.version FROM face_embeddings e "
            "JOIN subjects s USING (list_name, subject_id) LEFT JOIN list_versions v USING (list_name) "
            "WHERE (s.expires_at IS NULL OR s.expires_at > ?)"
        )
        params: tuple[object, ...] = (time.time(),)
        if lists is not None:
            query += f" AND e.list_name IN ({','.join('?' * len(lists))})"
            params += tuple(lists)
        rows = self._db.execute(query + " ORDER BY e.id", params).fetchall()
        subjects = self.details(lists)
        if not rows:
            return Gallery(np.empty((0, embedder.dim), np.float32), embedder=embedder, subjects=subjects)
        raw = b"".join(r[2] for r in rows)
        if len(raw) != len(rows) * embedder.dim * 4:
            raise EmbedderMismatch(f"the list store's face rows are not all {embedder.dim}-d, as {embedder.id} makes")
        matrix = np.frombuffer(raw, "<f4").reshape(-1, embedder.dim)
        return Gallery(
            matrix.astype(np.float32),
            tuple(r[0] for r in rows),
            tuple(r[1] for r in rows),
            tuple("local" if r[3] == "local" else f"v{r[4]}" for r in rows),
            embedder,
            subjects,
        )

    def details(self, lists: Collection[str] | None = None) -> dict[tuple[str, str], SubjectDetails]:
        """Who each subject of the given lists (all when None) is, as its alerts show it: the centre's
        entries with their name, category and priority; faces enrolled here with their name only."""
        query = "SELECT list_name, subject_id, name, category, priority, origin FROM subjects"
        params: tuple[object, ...] = ()
        if lists is not None:
            query += f" WHERE list_name IN ({','.join('?' * len(lists))})"
            params = tuple(lists)
        details = {}
        for list_name, subject_id, name, category, priority, origin in self._db.execute(query, params):
            from_centre = origin != "local"
            details[(list_name, subject_id)] = SubjectDetails(
                name[:SUBJECT_NAME_MAX] if name else None,  # `enroll --name` takes any length; an alert, 200 characters
                category[:SUBJECT_CATEGORY_MAX] if category and from_centre else None,
                priority if from_centre and 0 <= priority <= SUBJECT_PRIORITY_MAX else None,
            )
        return details

    def _refuse_other_embedders(self, list_name: str, embedder: EmbedderSpec, doing: str) -> None:
        """EmbedderMismatch when `list_name` holds face rows made by another embedder (in a transaction)."""
        other = self._db.execute(
            "SELECT embedder, COUNT(*) FROM face_embeddings WHERE list_name = ? AND embedder != ? GROUP BY embedder",
            (list_name, embedder.id),
        ).fetchall()
        if other:
            held = ", ".join(f"{n} made by {e}" for e, n in other)
            raise EmbedderMismatch(
                f"{doing} {list_name} with embedder {embedder.id}: the list holds faces {held}; one list never mixes "
                "embedders (remove those subjects, or rebuild them all with one embedder)"
            )
