"""How every gatebox database is opened and written: WAL, autocommit, shared across threads (callers
hold their own locks), one transaction idiom, schema versions, errors naming the store.

Writes that belong together go in `transaction(db)`: BEGIN IMMEDIATE … COMMIT, ROLLBACK on any
exception, so nothing is ever half-written and a failure never leaves a connection inside a
transaction holding the write lock.

A store's `Schema` is its ordered list of `Migration`s; the database records in PRAGMA user_version
how many it has had, and `open_database` applies the rest, each in a transaction of its own. A
database newer than the code (a later release wrote it) is refused rather than guessed at.

Every database holds biometric or personal data (faces in the outbox, embeddings, alert records):
each is private to the service user (0600, its -wal and -shm files too, whatever the umask), and
every connection overwrites what it deletes (`secure_delete`) rather than leaving it in free pages."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from edge.protocol.errors import GateboxError
from edge.protocol.private import make_private, open_private, private_dir

log = logging.getLogger(__name__)

# SQLite creates these beside a database, with the database file's mode.
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")

# A migration step: SQL (one or more statements) or a function of the connection, run in the
# migration's transaction.
Step = str | Callable[[sqlite3.Connection], None]


class Migration:
    """One schema change: its steps run in order, in one transaction with the new user_version."""

    def __init__(self, description: str, *steps: Step) -> None:
        if not steps:
            raise ValueError(f"migration {description!r} has no steps")
        self.description = description
        self.steps = steps

    def __repr__(self) -> str:
        return f"Migration({self.description!r})"


class Schema:
    """A store's migrations, oldest first: migration N brings a database to user_version N.
    Only ever append: a released migration never changes, since databases record that they had it."""

    def __init__(self, *migrations: Migration) -> None:
        self.migrations = migrations

    @property
    def version(self) -> int:
        return len(self.migrations)


def add_columns(table: str, columns: Mapping[str, str]) -> Callable[[sqlite3.Connection], None]:
    """A step adding `columns` (name -> declaration) to `table`, each only where missing: a database
    from before schema versions may have any of them already."""

    def add(db: sqlite3.Connection) -> None:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for column, declaration in columns.items():
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    return add


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT; ROLLBACK on any exception, which goes on up. IMMEDIATE takes the
    write lock first, so a read-modify-write never fails half way on a lock another connection holds
    (it waits, up to the connection's busy timeout). Inside another transaction on the same
    connection: a savepoint, undone on its own when it fails. No lock of its own: a connection
    shared between threads stays behind its store's lock, as every statement on it does."""
    if db.in_transaction:
        db.execute("SAVEPOINT nested")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK TO nested")
            db.execute("RELEASE nested")
            raise
        db.execute("RELEASE nested")
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        _roll_back(db)
        raise


def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Every statement of `sql`, one by one: unlike `executescript`, which COMMITs first, this stays
    inside the caller's transaction."""
    statement = ""
    for piece in sql.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):  # not a ';' inside a string, a comment or a trigger
            db.execute(statement)
            statement = ""
    if statement.strip():
        db.execute(statement)  # never complete (an open string, say): SQLite says what is wrong


def user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, schema: Schema, what: str, path: Path) -> None:
    """Bring `db` up to `schema.version`, one migration per transaction. Another process opening the
    same database waits at BEGIN IMMEDIATE, then finds the migration done. GateboxError when the
    database is newer than `schema`."""
    while (version := user_version(db)) != schema.version:
        with transaction(db):
            version = user_version(db)  # again, under the write lock
            if version > schema.version:
                raise GateboxError(
                    f"{what} {path} is at schema version {version}, newer than this gatebox knows "
                    f"({schema.version}): a later release wrote it. Run that release, or move the file aside"
                )
            if version == schema.version:
                return
            migration = schema.migrations[version]
            try:
                for step in migration.steps:
                    if isinstance(step, str):
                        run_script(db, step)
                    else:
                        step(db)
            except sqlite3.Error as e:
                raise GateboxError(
                    f"cannot bring {what} {path} to schema version {version + 1} ({migration.description}): {e}"
                ) from None
            db.execute(f"PRAGMA user_version = {version + 1}")
        if version:  # a new database's creation is not worth a line
            log.info("%s %s: schema version %d (%s)", what, path, version + 1, migration.description)


def connect(path: Path) -> sqlite3.Connection:
    """A further connection to a database already opened with `open_database`."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Per connection, and not every SQLite build defaults to it: a deleted face is overwritten with zeros.
    db.execute("PRAGMA secure_delete=ON")
    return db


def _use_wal(db: sqlite3.Connection, patience_s: float = 10.0) -> None:
    """Switch to WAL. Two processes opening a new database at once (the console and `centre record`)
    race for the switch, and SQLite reports the loser `database is locked` without waiting out the busy
    timeout: so wait here, a bounded while."""
    deadline = time.monotonic() + patience_s
    delay = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay)  # a lock held for the length of one switch: retry soon, then less often
            delay = min(delay * 2, 0.2)


def _roll_back(db: sqlite3.Connection) -> None:
    if db.in_transaction:  # a failed COMMIT may have ended it already
        db.execute("ROLLBACK")


def open_database(
    path: Path,
    schema: Schema,
    what: str,
    full_sync: bool = False,
    foreign_keys: bool = False,
) -> sqlite3.Connection:
    """Open (creating its folder) the database `what` at `path`, migrated to `schema`. `full_sync`:
    a commit survives a power cut, not only a crash."""
    companions = [path.with_name(path.name + suffix) for suffix in COMPANION_SUFFIXES]
    db: sqlite3.Connection | None = None
    try:
        private_dir(path.parent)
        os.close(open_private(path, os.O_RDONLY))  # 0600 before SQLite creates -wal and -shm with its mode
        make_private(*companions)  # ones an earlier version left 0644
        db = connect(path)
        _use_wal(db)
        if full_sync:
            db.execute("PRAGMA synchronous=FULL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        migrate(db, schema, what, path)
    except (OSError, sqlite3.Error, GateboxError) as e:
        if db is not None:
            db.close()
        if isinstance(e, GateboxError):
            raise
        raise GateboxError(f"cannot open {what} {path}: {e}") from None
    return db
