"""The centre's passage log: people and vehicles stored once, hourly totals, counts and search by API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from centre.auth import hash_password
from centre.config import CentreConfig, ConsoleConfig
from centre.console import Console
from centre.passages import PassageFilter
from centre.store import CentreStore
from centre.web import create_app
from edge.protocol.messages import Passage
from edge.protocol.mqtt import BrokerConfig
from tests.support.broker import free_port
from tests.support.console import CSRF_HEADER, OPERATOR, PASSWORD

TOPIC = "gatebox/s/b/passage"


def person(passage_id: str, ts: float, direction: str = "in") -> bytes:
    return Passage(passage_id=passage_id, site="s", box_id="b", camera="gate", ts=ts, subject="person",
                   direction=direction).model_dump_json(by_alias=True).encode()  # type: ignore[arg-type]  # fmt: skip


OLD_VEHICLE = b'{"schema": "gatebox.passage/1", "site": "s", "box_id": "b", "camera": "lane", "ts": %f, ' \
              b'"plate": "AB1234", "direction": "out"}'  # fmt: skip


def test_passages_are_stored_once_and_counted_per_hour_old_vehicle_passages_too(tmp_path: Path) -> None:
    store = CentreStore(tmp_path / "centre.sqlite3")
    now = time.time()
    try:
        assert store.ingest(TOPIC, person("p-1", now)).new
        assert not store.ingest(TOPIC, person("p-1", now)).new  # a resent copy
        assert store.ingest(TOPIC, person("p-2", now, "out")).kind == "passage"
        assert store.ingest(TOPIC, OLD_VEHICLE % now).new
        assert not store.ingest(TOPIC, OLD_VEHICLE % now).new  # no id: keyed by what it says
        totals = {(r["subject"], r["direction"]): r["passages"] for r in store.passages.hourly(PassageFilter())}
        assert totals == {("person", "in"): 1, ("person", "out"): 1, ("vehicle", "out"): 1}
        [vehicle] = store.passages.search(PassageFilter(plate="AB12"))
        assert vehicle["camera"] == "lane" and vehicle["direction"] == "out"
        assert len(store.passages.search(PassageFilter(direction="in", since=now - 1))) == 1
        assert store.passages.search(PassageFilter(until=now - 10)) == []
    finally:
        store.close()


@pytest.fixture
def api(tmp_path: Path, keys: tuple[Path, Path]) -> Iterator[tuple[Console, TestClient]]:
    console = Console(CentreConfig(broker=BrokerConfig(port=free_port())),
                      ConsoleConfig(db=tmp_path / "centre.sqlite3", client_id="passages"), keys[0])  # fmt: skip
    console.store.set_operator(OPERATOR, hash_password(PASSWORD))
    with TestClient(create_app(console), headers={CSRF_HEADER: "1"}) as client:
        assert client.get("/api/passages/counts").status_code == 401  # operators only
        assert client.post("/api/login", json={"name": OPERATOR, "password": PASSWORD}).status_code == 200
        yield console, client
    console.close()


def test_the_api_returns_todays_counts_the_last_24_hours_and_the_log(api: tuple[Console, TestClient]) -> None:
    console, client = api
    now = time.time()
    for i in range(3):
        console.store.ingest(TOPIC, person(f"p-{i}", now - i))
    console.store.ingest(TOPIC, person("p-old", now - 3 * 3600, "out"))
    body = client.get("/api/passages/counts", params={"site": "s"}).json()
    assert body["today"].get("person_in") == 3 or time.localtime(now).tm_hour == 0
    assert len(body["hours"]) == 24 and body["hours"][-1]["person_in"] == 3 and body["hours"][-4]["person_out"] == 1
    log = client.get("/api/passages", params={"direction": "out"}).json()["passages"]
    assert [p["ts"] for p in log] == [now - 3 * 3600]
    assert client.get("/api/passages", params={"limit": 0}).status_code == 422
