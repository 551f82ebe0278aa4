"""Where the centre keeps its record: an SQLite file (the embedded default, one centre) or a PostgreSQL
server (several console workers behind one address, `README.md` "Scaling out").

The stores (`centre.store`, `centre.passages`) write their SQL once, in the subset both speak (`?`
placeholders, `INSERT … ON CONFLICT … DO NOTHING / DO UPDATE`, row values, a `rowid` column the
PostgreSQL schema declares itself). What cannot be shared lives here, in `Dialect`: reading a field
of a JSON column, and a case-insensitive LIKE. Each store keeps a schema per backend: SQLite's
migrations (`edge.protocol.sqlite`, PRAGMA user_version) and PostgreSQL's, counted per store in the
`gatebox_schema` table; a database newer than the code is refused on both.

Every statement outside `transaction()` commits on its own (SQLite autocommit; PostgreSQL
`autocommit=True`): once `execute` returns, what it wrote is durable (`synchronous=FULL`; PostgreSQL's
`synchronous_commit` default), which is what lets the recorder confirm a message to its box right
after storing it."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from edge.protocol.errors import GateboxError
from edge.protocol.sqlite import Schema, connect, open_database, transaction

if TYPE_CHECKING:  # psycopg is imported when a PostgreSQL database is opened: an SQLite centre never loads it
    import psycopg

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# A PostgreSQL connection URL (libpq's form): postgresql://user[:password]@host[:port]/database[?options].
PostgresUrl = Annotated[str, Field(pattern=r"^postgres(ql)?://", max_length=2000)]
# The centre's database: an SQLite file, or a PostgreSQL URL.
DatabaseLocation = PostgresUrl | Path
log = logging.getLogger(__name__)
SCHEMA_TABLE = "gatebox_schema"
CONNECT_TIMEOUT_S = 10


def is_postgres(location: DatabaseLocation) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def parse_location(text: str) -> DatabaseLocation:
    """`--db`'s argument: a PostgreSQL URL as it is, anything else a file."""
    return text if text.startswith(POSTGRES_SCHEMES) else Path(text)


def shown(location: DatabaseLocation) -> str:
    """The location for a log line or an error: a URL without its password."""
    if not is_postgres(location):
        return str(location)
    parts = urlsplit(str(location))
    if parts.password is None:
        return str(location)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class Rows(Protocol):
    """What a statement gives back: sqlite3's and psycopg's cursors both are one."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class Dialect:
    """The few things the two backends spell differently."""

    name: str
    like: str  # a case-insensitive LIKE (SQLite's LIKE is one for ASCII; PostgreSQL's is not)

    def json_text(self, column: str, *keys: str) -> str:
        """A field of the JSON text in `column` (keys, outermost first) as text, NULL when absent."""
        if self.name == "postgresql":
            return f"({column}::jsonb #>> '{{{','.join(keys)}}}')"
        return f"json_extract({column}, '$.{'.'.join(keys)}')"


SQLITE = Dialect("sqlite", like="LIKE")
POSTGRESQL = Dialect("postgresql", like="ILIKE")


class Database(ABC):
    """One connection to a store's database. Callers hold their own lock around it, as before."""

    dialect: Dialect

    @abstractmethod
    def execute(self, sql: str, args: Sequence[object] = ()) -> Rows: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Writes that belong together: all or nothing (nested: a savepoint)."""

    @abstractmethod
    def reader(self) -> Database:
        """A further connection to the same database, for one thread's reads."""

    @abstractmethod
    def close(self) -> None: ...


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    def execute(self, sql: str, args: Sequence[object] = ()) -> Rows:
        return self.connection.execute(sql, args)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.connection.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with transaction(self.connection):
            yield

    def reader(self) -> SqliteDatabase:
        return SqliteDatabase(connect(self.path), self.path)

    def close(self) -> None:
        self.connection.close()


@lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """The shared SQL's `?` placeholders as psycopg's `%s` (a literal `%` doubled). The stores' SQL
    holds no `?` or `%` inside a string literal: their values are always parameters."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase(Database):
    dialect = POSTGRESQL

    def __init__(self, connection: psycopg.Connection[tuple[Any, ...]], url: str) -> None:
        self.connection = connection  # autocommit
        self.url = url

    def execute(self, sql: str, args: Sequence[object] = ()) -> Rows:
        cursor: Rows = self.connection.execute(_pyformat(sql), tuple(args) if args else None)
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(_pyformat(sql), [tuple(row) for row in rows])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.connection.transaction():
            yield

    def reader(self) -> PostgresDatabase:
        return PostgresDatabase(postgres_connect(self.url, "the centre's database"), self.url)

    def close(self) -> None:
        self.connection.close()

    def notify(self, channel: str, payload: str) -> None:
        """Tell every worker LISTENing on `channel` (delivered when this statement commits)."""
        self.connection.execute("SELECT pg_notify(%s, %s)", (channel, payload))


@dataclass(frozen=True)
class PostgresMigration:
    """One schema change of a store on PostgreSQL: its SQL, run in one transaction with the new version."""

    description: str
    sql: str


def postgres_connect(url: str, what: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit psycopg connection; GateboxError naming the problem (never the password)."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as e:
        detail = " ".join(str(e).split()) or type(e).__name__
        raise GateboxError(f"cannot open {what} at {shown(url)}: {detail}") from None


def _statements(sql: str) -> Iterator[str]:
    for statement in sql.split(";"):  # the schemas' DDL holds no `;` inside a string or a body
        if statement.strip():
            yield statement


def migrate_postgres(db: PostgresDatabase, store: str, migrations: Sequence[PostgresMigration], what: str) -> None:
    """Bring `store`'s tables up to `len(migrations)`, all in one transaction under an advisory lock:
    workers starting together queue here, and the later ones find the work done."""
    with db.connection.transaction():
        db.connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (SCHEMA_TABLE,))
        db.connection.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (store TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        row = db.connection.execute(f"SELECT version FROM {SCHEMA_TABLE} WHERE store = %s", (store,)).fetchone()
        version = row[0] if row else 0
        if version > len(migrations):
            raise GateboxError(
                f"{what} at {shown(db.url)} is at schema version {version}, newer than this gatebox knows "
                f"({len(migrations)}): a later release wrote it. Run that release, or use another database"
            )
        for number, migration in enumerate(migrations[version:], start=version + 1):
            for statement in _statements(migration.sql):
                db.connection.execute(statement)
            db.connection.execute(
                f"INSERT INTO {SCHEMA_TABLE} (store, version) VALUES (%s, %s) "
                "ON CONFLICT (store) DO UPDATE SET version = excluded.version",
                (store, number),
            )


def open_store_database(
    location: DatabaseLocation,
    what: str,
    sqlite_schema: Schema,
    postgres_store: str,
    postgres_migrations: Sequence[PostgresMigration],
) -> Database:
    """The store `what` at `location`, migrated: an SQLite file (`full_sync`: a commit survives a
    power cut) or, for a PostgreSQL URL, the tables of `postgres_store` in that database."""
    if not is_postgres(location):
        return SqliteDatabase(open_database(Path(location), sqlite_schema, what, full_sync=True), Path(location))
    import psycopg

    url = str(location)
    db = PostgresDatabase(postgres_connect(url, what), url)
    try:
        migrate_postgres(db, postgres_store, postgres_migrations, what)
    except psycopg.Error as e:
        db.close()
        raise GateboxError(f"cannot bring {what} at {shown(url)} up to date: {' '.join(str(e).split())}") from None
    except BaseException:
        db.close()
        raise
    return db


class Listener:
    """LISTENs on a PostgreSQL channel on a connection of its own and hands each notification's payload
    to `deliver`, on a thread, until closed. A lost connection is opened again (a notification sent
    meanwhile is missed: the pages refetch on the next one, and reconnect their feed anyway)."""

    def __init__(self, url: str, channel: str, deliver: Callable[[str], None]) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", channel):
            raise ValueError(f"not a channel name: {channel!r}")
        self._url = url
        self._channel = channel
        self._deliver = deliver
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether LISTEN is in force (a notification sent after this is delivered)."""
        return self._ready.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as connection:
                    connection.execute(f"LISTEN {self._channel}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=0.5):
                            self._deliver(notice.payload)
            except psycopg.Error as e:
                self._ready.clear()
                log.warning("listening for %s on %s: %s; again in a second", self._channel, shown(self._url), e)
                self._stop.wait(1.0)
