"""A real PostgreSQL server on a free loopback port, started and stopped by the tests (Debian's
`postgresql` package; `./scripts/test` installs it). A cluster of its own in a temporary folder: whatever
the package's service runs is left alone.

PostgreSQL refuses to run as root, so as root the cluster is made and run by the `postgres` system
user, in a folder it owns (outside pytest's root-only tmp tree)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.broker import free_port
from tests.support.waiting import wait_for, wait_listening

SERVER_USER = "postgres"
SUPERUSER = "gatebox"


def find_postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps it off PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable_reason() -> str | None:
    """Why the tests cannot run a server here, or None."""
    if find_postgres_bin() is None:
        return "PostgreSQL is not installed (./scripts/test installs Debian's `postgresql` when run as root)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no `{SERVER_USER}` user to run PostgreSQL as"
    return None


class Postgres:
    def __init__(self) -> None:
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed")
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="gatebox-postgres-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.sockets.mkdir()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            for path in (self.root, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", SERVER_USER, "--"]
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.root / "postgres.log"

    def start(self) -> Postgres:
        subprocess.run(
            [*self._as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
             "--locale=C", "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        # fsync off: a test cluster is thrown away, and commits stay as they are for every client.
        self.process = subprocess.Popen(
            [*self._as_user, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.sockets), "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        stderr = self.process.stderr
        assert stderr is not None
        wait_listening(self.process, self.port, 30, "postgres", lambda: stderr.read().decode())
        # Listening comes before accepting: until recovery ends, a login is told "the database system is
        # starting up".
        wait_for(self._accepts_logins, 30, "PostgreSQL to accept logins", interval=0.1)
        return self

    def _accepts_logins(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url(), connect_timeout=5).close()
        except psycopg.OperationalError:
            return False
        return True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database of its own (one per test): its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM through runuser: a "smart" shutdown, clients are gone by now
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
