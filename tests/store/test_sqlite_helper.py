"""The one SQLite helper every store opens its database with (edge/store/sqlite.py): one transaction
idiom that never leaves anything half-written, and schema versions in PRAGMA user_version, each
migration applied once, in order, in a transaction of its own."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from centre.store import CentreStore
from edge.comms.outbox import Outbox, OutgoingMessage, Priority
from edge.protocol.errors import GateboxError
from edge.protocol.sqlite import Migration, Schema, add_columns, connect, open_database, transaction
from edge.store.alert_states import AlertStates
from tests.support.alerts import sample_alert as alert

TABLE = Schema(Migration("a table", "CREATE TABLE IF NOT EXISTS t (x INTEGER UNIQUE)"))


def rows(db: sqlite3.Connection) -> list[int]:
    return [x for (x,) in db.execute("SELECT x FROM t ORDER BY x")]


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with closing(open_database(tmp_path / "t.sqlite3", TABLE, "the test store")) as opened:
        yield opened


# --- one transaction idiom ---------------------------------------------------------------------


def test_a_transaction_that_fails_writes_nothing(tmp_path: Path, db: sqlite3.Connection) -> None:
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("half way")
    with pytest.raises(sqlite3.IntegrityError), transaction(db):  # SQLite's own error, on the second row
        db.executemany("INSERT INTO t VALUES (?)", [(3,), (3,)])
    assert not db.in_transaction and rows(db) == []
    with transaction(db):
        db.execute("INSERT INTO t VALUES (4)")
    with closing(connect(tmp_path / "t.sqlite3")) as other:  # committed: another connection sees it
        assert rows(other) == [4]


def test_a_nested_transaction_is_a_savepoint(db: sqlite3.Connection) -> None:
    with transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError), transaction(db):
            db.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("only the inner part goes")
        with transaction(db):
            db.execute("INSERT INTO t VALUES (3)")
    assert rows(db) == [1, 3]
    with pytest.raises(RuntimeError), transaction(db):
        with transaction(db):
            db.execute("INSERT INTO t VALUES (5)")
        raise RuntimeError("the outer part fails: the inner one goes with it")
    assert rows(db) == [1, 3] and not db.in_transaction


def test_it_works_on_a_connection_with_pythons_implicit_transactions(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "legacy.sqlite3")) as legacy:  # isolation_level "" (the default)
        legacy.execute("CREATE TABLE t (x INTEGER UNIQUE)")
        legacy.commit()
        with pytest.raises(RuntimeError), transaction(legacy):
            legacy.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError
        with transaction(legacy):
            legacy.execute("INSERT INTO t VALUES (2)")
        assert not legacy.in_transaction and rows(legacy) == [2]


def test_writers_on_several_connections_lose_no_update(tmp_path: Path, db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE: a read-modify-write on one connection waits for another's to finish, rather than
    failing on a lock upgrade or overwriting it (as the outbox's two connections, or two processes, do)."""
    db.execute("INSERT INTO t VALUES (0)")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def increment() -> None:
        with closing(connect(tmp_path / "t.sqlite3")) as mine:
            start.wait()
            try:
                for _ in range(25):
                    with transaction(mine):
                        (x,) = mine.execute("SELECT x FROM t").fetchone()
                        mine.execute("UPDATE t SET x = ?", (x + 1,))
            except BaseException as e:  # reported by the main thread
                errors.append(e)

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and rows(db) == [100]


def test_outbox_bookkeeping_that_fails_is_rolled_back(tmp_path: Path) -> None:
    """It used to BEGIN without a ROLLBACK: a failure left its connection inside a transaction holding
    the write lock, and the next `put` waited, then failed with `database is locked`."""
    outbox = Outbox(tmp_path / "outbox.sqlite3", 10**6)
    try:
        for event_id in ("a1", "a2"):
            outbox.put(OutgoingMessage(event_id, "alert", Priority.ALERT, "t", b"x", True))
        with pytest.raises(sqlite3.Error):
            outbox.mark_sent(["a1", ["not", "an", "id"]], now=1.0)  # type: ignore[list-item]
        assert [d[0] for d in outbox.due(10)] == ["a1", "a2"]  # a1 not marked sent: nothing half-written
        with pytest.raises(sqlite3.Error):
            outbox.remove(["a1", ["not", "an", "id"]])  # type: ignore[list-item]
        assert outbox.contains("a1")
        outbox.put(OutgoingMessage("a3", "alert", Priority.ALERT, "t", b"x", True))
        outbox.mark_sent(["a1"], now=1.0)
        assert outbox.remove(["a1"]) == 1 and [d[0] for d in outbox.due(10)] == ["a2", "a3"]
    finally:
        outbox.close()


def test_alert_confirmations_that_fail_are_rolled_back(tmp_path: Path) -> None:
    states = AlertStates(tmp_path)
    try:
        states.record(alert("a1"))
        states.record(alert("a2"))
        with pytest.raises(sqlite3.Error):
            states.confirm(["a1", ["not", "an", "id"]])  # type: ignore[list-item]
        assert states.unconfirmed_alerts() == ["a1", "a2"]
        states.confirm(["a2"])
        assert states.unconfirmed_alerts() == ["a1"]
    finally:
        states.close()


# --- schema versions -----------------------------------------------------------------------------


def test_migrations_run_in_order_once_each(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    ran: list[str] = []
    first = [
        Migration(
            "the tables",
            "CREATE TABLE IF NOT EXISTS t (x INTEGER);\n-- a comment; with a semicolon\nINSERT INTO t VALUES (1);",
            lambda db: ran.append("one"),
        ),
        Migration("a column", add_columns("t", {"y": "TEXT DEFAULT 'y;'"}), lambda db: ran.append("two")),
    ]
    with closing(open_database(path, Schema(*first), "the test store")) as db:
        assert ran == ["one", "two"] and db.execute("SELECT x, y FROM t").fetchall() == [(1, "y;")]
    assert user_version(path) == 2
    with closing(open_database(path, Schema(*first), "the test store")):
        assert ran == ["one", "two"]  # nothing runs twice
    later = Schema(*first, Migration("later", "UPDATE t SET x = x + 1", lambda db: ran.append("three")))
    with closing(open_database(path, later, "the test store")) as db:
        assert ran == ["one", "two", "three"] and rows(db) == [2]
    assert user_version(path) == 3


def test_a_migration_that_fails_leaves_the_database_at_the_version_before(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    broken = Migration("breaks half way", "INSERT INTO t VALUES (2)", "ALTER TABLE nowhere ADD COLUMN z")
    with pytest.raises(GateboxError, match=rf"the test store {re.escape(str(path))} .*version 2 .*nowhere"):
        open_database(path, Schema(*TABLE.migrations, broken), "the test store")
    assert user_version(path) == 1  # the first migration stays done, the second left no trace
    with closing(open_database(path, TABLE, "the test store")) as db:
        assert rows(db) == []


def test_an_unversioned_database_is_adopted(tmp_path: Path) -> None:
    """One an earlier version made (user_version 0), with or without the columns added since."""
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as old:
        old.executescript("CREATE TABLE t (x INTEGER UNIQUE, y TEXT); INSERT INTO t VALUES (7, 'kept');")
    schema = Schema(*TABLE.migrations, Migration("y and z", add_columns("t", {"y": "TEXT", "z": "REAL DEFAULT 0"})))
    with closing(open_database(path, schema, "the test store")) as db:
        assert db.execute("SELECT x, y, z FROM t").fetchall() == [(7, "kept", 0)]
    assert user_version(path) == 2


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    with closing(sqlite3.connect(path)) as newer:
        newer.executescript("CREATE TABLE t (x INTEGER UNIQUE, from_the_future TEXT); PRAGMA user_version = 5;")
    with pytest.raises(GateboxError, match=rf"the test store {re.escape(str(path))} .* version 5, newer .*\(1\)"):
        open_database(path, TABLE, "the test store")
    assert user_version(path) == 5


def test_two_openers_at_once_migrate_once(tmp_path: Path) -> None:
    """Two processes starting on one database (the console and `gatebox centre record`)."""
    path = tmp_path / "m.sqlite3"
    ran: list[int] = []
    schema = Schema(Migration("slow", "CREATE TABLE t (x)", lambda db: ran.append(1)))
    start = threading.Barrier(3)
    opened: list[sqlite3.Connection] = []

    def open_it() -> None:
        start.wait()
        opened.append(open_database(path, schema, "the test store"))

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in opened:
        db.close()
    assert len(opened) == 3 and ran == [1] and user_version(path) == 1


def test_files_stay_private_through_migrations(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = tmp_path / "store" / "m.sqlite3"
        schema = Schema(*TABLE.migrations, Migration("more", "CREATE TABLE u (y)"))
        with closing(open_database(path, schema, "the test store")):
            for file in (path, path.with_name("m.sqlite3-wal"), path.with_name("m.sqlite3-shm")):
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        os.umask(previous)


def test_an_operator_action_that_fails_to_record_leaves_the_event_as_it_was(tmp_path: Path) -> None:
    """The centre's ack/close is two writes (the event's requested state, the action's record): half of
    it used to stay, and a retry then found the event `already` acked."""
    store = CentreStore(tmp_path / "centre.sqlite3")
    try:
        store.ingest("gatebox/x/b/alert", alert("e1", site="x", box_id="b").to_json().encode())
        store._db.execute("CREATE TRIGGER full BEFORE INSERT ON actions BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        with pytest.raises(sqlite3.IntegrityError, match="disk full"):
            store.claim_action(("x", "b"), "e1", "acked", "patrol sent", "op1", 60)
        event = store.event("e1")
        assert event is not None and (event["requested_state"], event["acted_by"], event["actions"]) == (None, None, [])
        store._db.execute("DROP TRIGGER full")
        assert store.claim_action(("x", "b"), "e1", "acked", "patrol sent", "op1", 60) == "ok"
    finally:
        store.close()
