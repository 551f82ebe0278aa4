"""How every gatebox database is opened: WAL, autocommit, shared across threads (callers hold
their own locks), schema created and later columns added in place, errors naming the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from edge.errors import GateboxError


def connect(path: Path) -> sqlite3.Connection:
    """A further connection to a database already opened with `open_database`."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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
