"""How every gatebox database is opened: WAL, autocommit, shared across threads (callers hold
their own locks), schema created and later columns added in place, errors naming the store.

Every database holds biometric or personal data (faces in the outbox, embeddings, alert records):
each is private to the service user (0600, its -wal and -shm files too, whatever the umask), and
every connection overwrites what it deletes (`secure_delete`) rather than leaving it in free pages."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from edge.protocol.errors import GateboxError
from edge.protocol.private import make_private, open_private, private_dir

# SQLite creates these beside a database, with the database file's mode.
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def connect(path: Path) -> sqlite3.Connection:
    """A further connection to a database already opened with `open_database`."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Per connection, and not every SQLite build defaults to it: a deleted face is overwritten with zeros.
    db.execute("PRAGMA secure_delete=ON")
    return db


def open_database(
    path: Path,
    schema: str,
    what: str,
    full_sync: bool = False,
    foreign_keys: bool = False,
    added_columns: Mapping[str, Mapping[str, str]] | None = None,
) -> sqlite3.Connection:
    """Open (creating its folder and tables) the database `what` at `path`. `full_sync`: a commit
    survives a power cut, not only a crash. `added_columns`: table -> {column: declaration} that
    later versions introduced, added to a database an earlier version made."""
    companions = [path.with_name(path.name + suffix) for suffix in COMPANION_SUFFIXES]
    try:
        private_dir(path.parent)
        os.close(open_private(path, os.O_RDONLY))  # 0600 before SQLite creates -wal and -shm with its mode
        make_private(*companions)  # ones an earlier version left 0644
        db = connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        if full_sync:
            db.execute("PRAGMA synchronous=FULL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        db.executescript(schema)
        for table, columns in (added_columns or {}).items():
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for column, declaration in columns.items():
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    except (OSError, sqlite3.Error) as e:
        raise GateboxError(f"cannot open {what} {path}: {e}") from None
    return db
