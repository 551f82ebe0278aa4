"""The centre on PostgreSQL: `serve --db postgresql://…`, clear errors, schema versions; several console
workers in one MQTT shared-subscription group storing each alert once, and each worker's pages hearing
of what another stored (NOTIFY/LISTEN)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import psycopg
import pytest

from centre.auth import hash_password
from centre.cli import build_parser
from centre.config import CentreConfig, ConsoleConfig
from centre.console import Console
from centre.database import parse_location
from centre.store import CentreStore
from edge.protocol.errors import GateboxError
from edge.protocol.mqtt import BrokerConfig
from tests.conftest import REPO, start_cli, write_config
from tests.support.broker import Mosquitto, free_port
from tests.support.console import CSRF_HEADER, OPERATOR, PASSWORD
from tests.support.simbox import SimBox
from tests.support.waiting import wait_for, wait_listening

# --- fast: no server needed -------------------------------------------------------------------------


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = f"postgresql://gatebox:s3cret@127.0.0.1:{free_port()}/centre"
    with pytest.raises(GateboxError) as caught:
        CentreStore(url)
    message = str(caught.value)
    assert message.startswith(f"cannot open the centre store at postgresql://gatebox:***@127.0.0.1:{url.split(':')[3]}")
    assert "s3cret" not in message and "refused" in message.lower()


def test_a_bad_url_is_named() -> None:
    with pytest.raises(GateboxError, match=r"cannot open the centre store at postgresql://gatebox@127\.0\.0\.1:port"):
        CentreStore("postgresql://gatebox@127.0.0.1:port/centre")


def test_db_is_a_file_or_a_postgresql_url_and_a_share_group_needs_postgresql() -> None:
    url = "postgresql://gatebox@db.example:5432/centre"
    assert build_parser().parse_args(["serve", "--db", url]).db == url  # not a Path: its `//` would collapse
    assert build_parser().parse_args(["serve", "--db", "c.sqlite3"]).db == Path("c.sqlite3")
    assert parse_location("postgres://x@y/z") == "postgres://x@y/z"
    assert ConsoleConfig.model_validate({"db": url, "share_group": "workers"}).db == url
    assert ConsoleConfig(db=url).lists_folder == Path("/var/lib/gatebox-centre/lists")
    assert ConsoleConfig(db=Path("/srv/c/centre.sqlite3")).lists_folder == Path("/srv/c/lists")
    with pytest.raises(ValueError, match="share_group needs a PostgreSQL"):
        ConsoleConfig.model_validate({"db": "/srv/centre.sqlite3", "share_group": "workers"})


# --- slow: a real PostgreSQL ------------------------------------------------------------------------


def test_a_database_newer_than_the_code_is_refused(postgres_url: str) -> None:
    CentreStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE gatebox_schema SET version = 99 WHERE store = 'centre'")
    with pytest.raises(GateboxError, match="is at schema version 99, newer than this gatebox knows"):
        CentreStore(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        stores: dict[str, int] = dict(connection.execute("SELECT store, version FROM gatebox_schema").fetchall())
    assert stores == {"centre": 99, "passages": 1}  # the passage log keeps a version of its own


@pytest.mark.slow  # launches the program
def test_serve_says_when_the_database_is_unreachable() -> None:
    url = f"postgresql://gatebox@127.0.0.1:{free_port()}/centre"
    done = subprocess.run([sys.executable, "-m", "centre", "serve", "--db", url, "--listen", "127.0.0.1:1"],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"gatebox-centre: error: cannot open the centre store at {url}" in done.stderr


def test_gatebox_centre_serve_on_postgresql_stores_and_confirms(
    tmp_path: Path, broker: Mosquitto, postgres_url: str
) -> None:
    store = CentreStore(postgres_url)
    store.set_operator(OPERATOR, hash_password(PASSWORD))
    store.close()
    port = free_port()
    config = write_config(tmp_path / "centre.yaml", broker={"port": broker.port, "topic_prefix": "pgserve"},
                          console={"client_id": f"pgserve-{tmp_path.name}"[:64]})  # fmt: skip
    log = tmp_path / "console.log"
    server = start_cli("--config", config, "centre", "serve", "--db", postgres_url, "--listen", f"127.0.0.1:{port}",
                       log=log)  # fmt: skip
    box = SimBox(broker.port, "s", "b", prefix="pgserve")
    try:
        wait_listening(server, port, 60, "console", log.read_text)
        with closing(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                  headers={CSRF_HEADER: "1"})) as api:  # fmt: skip
            assert api.post("/api/login", json={"name": OPERATOR, "password": PASSWORD}).status_code == 200
            wait_for(lambda: api.get("/api/me").json()["broker_connected"], 15, "the console on the broker")

            def stored() -> bool:  # the box resends until confirmed, as its outbox does
                if alert.event_id not in box.receipts:
                    box.publish("alert", alert.to_json())
                return api.get(f"/api/events/{alert.event_id}").status_code == 200

            alert = box.alert(subject="pg")
            wait_for(stored, 20, "the alert stored in PostgreSQL", interval=0.5)
            wait_for(lambda: alert.event_id in box.receipts, 10, "its receipt")
        check = CentreStore(postgres_url)
        try:
            assert [e["subject_id"] for e in check.events()] == ["pg"]
        finally:
            check.close()
    finally:
        box.close()
        server.terminate()
        server.wait(15)
    assert "Traceback" not in log.read_text()


@pytest.fixture
def workers(broker: Mosquitto, postgres_url: str, tmp_path: Path) -> Iterator[list[Console]]:
    """Two console workers in one shared-subscription group, on one PostgreSQL database. A group of its own
    per test: the broker keeps an earlier test's workers (persistent sessions) in theirs, and would queue
    a share of the messages for them."""
    group = f"workers-{uuid.uuid4().hex[:8]}"
    config = CentreConfig(broker=BrokerConfig(port=broker.port, topic_prefix="pgshare", keepalive_s=5))
    consoles = [
        Console(
            config,
            ConsoleConfig(
                db=postgres_url,
                client_id=f"worker-{i}-{tmp_path.name}"[:64],
                share_group=group,
                lists_dir=tmp_path / "lists",
            ),
            None,
        )
        for i in range(2)
    ]
    try:
        for console in consoles:
            wait_for(console.subscribed.is_set, 15, "the worker's subscriptions")
            assert console.shared_changes is not None and console.shared_changes.wait_ready(15)
        yield consoles
    finally:
        for console in consoles:
            console.close()


def test_workers_in_a_share_group_each_take_a_share_and_store_each_alert_once(workers: list[Console]) -> None:
    box = SimBox(workers[0].config.broker.port, "s", "b", prefix="pgshare")
    try:
        alerts = [box.alert(subject=f"s{i}") for i in range(20)]
        wait_for(lambda: len(box.receipts) == 20, 30, "every alert confirmed")
        wait_for(lambda: sum(w.recorder.counts["alert"] for w in workers) >= 20, 10, "both workers done")
    finally:
        box.close()
    handled = [w.recorder.counts["alert"] for w in workers]
    assert sum(handled) == 20, handled  # each alert went to one worker only...
    assert all(handled), handled  # ... and each worker took a share
    assert workers[0].store.count_events() == 20
    assert {e["event_id"] for e in workers[1].store.events(limit=50)} == {a.event_id for a in alerts}


def test_a_page_on_one_worker_hears_of_an_alert_another_stored(workers: list[Console]) -> None:
    async def watch() -> tuple[dict[str, object] | None, dict[str, object] | None]:
        pages = [w.changes.subscribe() for w in workers]
        box = SimBox(workers[0].config.broker.port, "s", "b", prefix="pgshare")
        try:
            box.alert(subject="seen-everywhere")
            heard = [await asyncio.wait_for(_next_events_change(page), 15) for page in pages]
        finally:
            box.close()
        return heard[0], heard[1]

    first, second = asyncio.run(watch())
    assert first == second == {"kind": "events", "new_panic": False}
    handled = [w.recorder.counts["alert"] for w in workers]
    assert sorted(handled) == [0, 1]  # one worker stored it; the other's page heard of it all the same


async def _next_events_change(page: asyncio.Queue[dict[str, object] | None]) -> dict[str, object] | None:
    while True:
        change = await page.get()
        if change is None or change.get("kind") == "events":
            return change


def test_a_browser_on_worker_b_hears_over_sse_of_an_alert_worker_a_stored(
    tmp_path: Path, broker: Mosquitto, postgres_url: str
) -> None:
    """Two `gatebox centre serve` workers on one database; B hears nothing from the boxes (another topic
    prefix), so the alert on its page's live feed can only have come from A, through PostgreSQL."""
    store = CentreStore(postgres_url)
    store.set_operator(OPERATOR, hash_password(PASSWORD))
    store.close()
    servers: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    try:
        for name, prefix, port in (("a", "pgsse", ports[0]), ("b", "pgsse-none", ports[1])):
            console = {"client_id": f"sse-{name}-{tmp_path.name}"[:64], "share_group": "sse", "db": postgres_url,
                       "port": port, "lists_dir": str(tmp_path / "lists")}  # fmt: skip
            config = write_config(tmp_path / f"{name}.yaml", broker={"port": broker.port, "topic_prefix": prefix},
                                  console=console)  # fmt: skip
            servers.append(start_cli("--config", config, "centre", "serve", log=tmp_path / f"{name}.log"))
            wait_listening(servers[-1], port, 60, f"worker {name}", (tmp_path / f"{name}.log").read_text)
        a, b = (httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=15, headers={CSRF_HEADER: "1"}) for p in ports)
        box = SimBox(broker.port, "s", "b", prefix="pgsse")
        with closing(a), closing(b), closing(box):
            for api in (a, b):
                assert api.post("/api/login", json={"name": OPERATOR, "password": PASSWORD}).status_code == 200

            def a_receives() -> bool:  # A is subscribed once it has stored what the box sends
                box.heartbeat()
                return bool(a.get("/api/boxes").json()["boxes"])

            wait_for(a_receives, 20, "worker A to receive from the box", interval=0.5)
            with b.stream("GET", "/api/stream") as feed:
                lines = feed.iter_lines()
                assert next(lines) == "event: hello"
                alert = box.alert(subject="from-a")
                deadline = time.monotonic() + 15
                for change in lines:  # (the feed's keep-alive pings come between)
                    if change.startswith("data:") and '"events"' in change:
                        break
                    assert time.monotonic() < deadline, "no change on worker B's feed"
            assert '"kind":"events"' in change.replace(" ", "")
            assert [e["event_id"] for e in b.get("/api/events").json()["events"]] == [alert.event_id]
    finally:
        for server in servers:
            server.terminate()
            server.wait(15)
    logs = [(tmp_path / f"{name}.log").read_text() for name in "ab"]
    assert all("Traceback" not in log for log in logs), logs
