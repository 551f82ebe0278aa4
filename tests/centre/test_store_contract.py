"""The centre store's contract, run unchanged against both backends: SQLite (the embedded default, fast
tier) and a real PostgreSQL (the tests' own server, slow tier). What one backend does, the other must."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

import pytest

from centre.passages import PassageFilter
from centre.store import CentreStore, EventFilter, HistoryFilter, SubjectRecord
from edge.protocol.bundle import Manifest
from edge.protocol.messages import AlertState, Heartbeat, ListAck, Passage
from edge.protocol.panic import PanicEvent
from edge.protocol.wire import Refused
from tests.support.alerts import sample_alert

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]
WHEN = datetime(2026, 11, 30, tzinfo=timezone.utc)


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "centre.sqlite3"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(location: Path | str) -> Iterator[CentreStore]:
    store = CentreStore(location)
    yield store
    store.close()


def alert(event_id: str, box: str = "b", **fields: object) -> bytes:
    return sample_alert(event_id, "watchlist", site="s", box_id=box, **fields).model_dump_json(by_alias=True).encode()


def panic(sequence: int, kind: str = "panic", event_id: str = "p1") -> bytes:
    return PanicEvent.model_validate({
        "event_id": event_id, "message_id": f"{event_id}:{sequence}", "kind": kind, "device_id": "btn-1",
        "household": "Li Family", "pressed_at": WHEN, "received_at": WHEN, "sequence": sequence, "presses": sequence,
        "site": "s", "box_id": "b",
    }).to_json().encode()  # fmt: skip


def passage(passage_id: str, ts: float, plate: str | None = None) -> bytes:
    return Passage.model_validate({"passage_id": passage_id, "site": "s", "box_id": "b", "camera": "gate", "ts": ts,
                                   "subject": "vehicle" if plate else "person", "direction": "in", "plate": plate}
                                  ).model_dump_json(by_alias=True).encode()  # fmt: skip


def test_an_alert_is_stored_once_whatever_is_resent(store: CentreStore) -> None:
    first = store.ingest("gatebox/s/b/alert", alert("a1", location={"lat": 31.2, "lon": 121.4, "gate": "North"}))
    assert (first.kind, first.new, first.receipt_id) == ("alert", True, "a1")
    again = store.ingest("gatebox/s/b/alert", alert("a1"))
    assert (again.new, again.receipt_id) == (False, "a1")  # confirmed again, stored once
    assert store.count_events() == 1
    other_box = store.ingest("gatebox/s/c/alert", alert("a1", box="c"))  # another box's event of the same id
    assert other_box.new and other_box.clashes_with == (("s", "b"),)
    assert store.count_events() == 2
    [gate] = store.gates()
    assert (gate["site"], gate["gate"], gate["lat"]) == ("s", "North", 31.2)
    assert store.snapshot("a1", "s", "b") == b"\xff\xd8\xff\x00"


def test_panics_take_later_copies_and_come_first_in_the_feed(store: CentreStore) -> None:
    store.ingest("gatebox/s/b/alert", alert("a1"))
    assert store.ingest("gatebox/s/b/panic", panic(1)).new
    assert store.ingest("gatebox/s/b/panic", panic(3)).receipt_id == "p1:3"
    assert not store.ingest("gatebox/s/b/panic", panic(2)).new  # an older copy arriving late
    store.ingest("gatebox/s/b/alert", alert("a2"))
    feed = store.events()
    assert [e["event_id"] for e in feed] == ["p1", "a2", "a1"]  # the open panic first, then newest first
    assert (feed[0]["sequence"], feed[0]["panic"], feed[0]["household"]) == (3, True, "Li Family")
    assert [e["event_id"] for e in store.events(EventFilter(kind="alert"))] == ["a2", "a1"]
    assert [e["event_id"] for e in store.events(EventFilter(kind="panic", state="open"))] == ["p1"]
    assert [e["event_id"] for e in store.events(EventFilter(limit=1, offset=1))] == ["a2"]


def test_operators_act_once_and_the_box_confirms(store: CentreStore) -> None:
    store.ingest("gatebox/s/b/alert", alert("a1"))
    key = store.find("a1")
    assert key == ("s", "b")
    assert store.claim_action(key, "a1", "acked", "on it", "ana", 60) == "ok"
    assert store.claim_action(key, "a1", "acked", None, "bo", 60) == "already"
    assert store.claim_action(key, "zz", "acked", None, "bo", 60) == "unknown"
    assert store.claim_action(key, "a1", "closed", None, "bo", 60) == "ok"
    store.release_action(key, "a1", "closed")  # could not be sent
    event = store.event("a1") or {}
    assert (event["requested_state"], event["note"]) == ("acked", "on it")
    actions = cast(list[dict[str, object]], event["actions"])
    assert [(a["state"], a["by"]) for a in actions] == [("acked", "ana")]
    confirm = AlertState(event_id="a1", state="acked").model_dump_json(by_alias=True).encode()
    assert store.ingest("gatebox/s/b/alert_state", confirm).kind == "alert_state"
    assert (store.event("a1") or {})["state"] == "acked"
    with pytest.raises(Refused):  # never another box's event of that id
        store.ingest("gatebox/s/c/alert_state", confirm)


def test_history_searches_pages_and_carries_what_operators_did(store: CentreStore) -> None:
    for i in range(5):
        store.ingest("gatebox/s/b/alert", alert(f"a{i}", subject_id=f"Subj-{i}", subject_name=f"Name {i}",
                                                location={"gate": "East" if i % 2 else "West"}))  # fmt: skip
    store.ingest("gatebox/s/b/panic", panic(1))
    store.claim_action(("s", "b"), "a3", "acked", None, "ana", 60)
    page, cursor = store.history(HistoryFilter(), 4)
    assert len(page) == 4 and cursor is not None
    rest, end = store.history(HistoryFilter(), 4, cursor)
    assert end is None and {e["event_id"] for e in page + rest} == {"a0", "a1", "a2", "a3", "a4", "p1"}
    assert store.count_history(HistoryFilter(gate="East")) == 2
    assert [e["event_id"] for e in store.history(HistoryFilter(subject="subj-2"), 10)[0]] == ["a2"]  # any case
    assert [e["event_id"] for e in store.history(HistoryFilter(subject="li fam"), 10)[0]] == ["p1"]  # household
    assert store.count_history(HistoryFilter(kind="panic")) == 1
    done = {str(e["event_id"]): e["actions"] for e in store.history_with_actions(HistoryFilter(), batch=2)}
    assert len(done) == 6 and done["a3"] == [{"state": "acked", "note": None, "by": "ana", "at": pytest.approx(
        done["a3"][0]["at"])}]  # type: ignore[index]  # fmt: skip


def test_boxes_heartbeats_and_list_versions(store: CentreStore) -> None:
    first = store.ingest("gatebox/s/b/availability", b"online")
    assert (first.box_before, first.box_online) == (None, True)
    heartbeat = Heartbeat.model_validate({"site": "s", "box_id": "b", "lists": {"watchlist": {"version": 2}}})
    beat = store.ingest("gatebox/s/b/heartbeat", heartbeat.model_dump_json(by_alias=True).encode())
    assert beat.box_before is not None and beat.box_before.online is True and beat.lists_changed
    offline = store.ingest("gatebox/s/b/availability", b"offline")
    assert offline.box_before is not None and offline.box_online is False
    store.record_published("watchlist", 3, 10, Path("/tmp/v3.gbl"), "ana")
    ack = ListAck(list="watchlist", version=3, entries=10).model_dump_json(by_alias=True).encode()
    assert store.ingest("gatebox/s/b/list_ack", ack).kind == "list_ack"
    store.ingest("gatebox/s/b/list_ack", ack)  # again: the same row
    with pytest.raises(Refused):
        too_new = ListAck(list="watchlist", version=9, entries=1).model_dump_json(by_alias=True).encode()
        store.ingest("gatebox/s/b/list_ack", too_new)
    [box] = store.boxes()
    assert (box["online"], box["lists"], box["heartbeat"] is not None) == (False, {"watchlist": 3}, True)


def test_published_lists_manifests_and_subjects(store: CentreStore) -> None:
    store.record_published("watchlist", 1, 2, Path("/tmp/v1.gbl"), "ana")
    store.record_published("watchlist", 1, 3, Path("/tmp/v1b.gbl"), "bo")  # the same version again: replaced
    assert store.published("watchlist") == {"version": 1, "entries": 3, "bundle": "/tmp/v1b.gbl", "by": "bo",
                                            "published_at": pytest.approx(store.published("watchlist")["published_at"])}  # type: ignore[index]  # fmt: skip
    manifest = Manifest.model_validate({"list": "watchlist", "kind": "full", "version": 2**53 - 1, "entries": 3,
                                        "size": 1, "chunks": ["0" * 64], "created_at": WHEN})  # fmt: skip
    assert store.record_manifest(manifest) and not store.record_manifest(manifest)
    assert store.highest_version("watchlist") == 2**53 - 1  # versions reach 2^53: BIGINT on PostgreSQL
    assert store.manifests()["watchlist"]["version"] == 2**53 - 1
    records = [SubjectRecord("s1", "Ann", "elder", 2, b"jpeg"), SubjectRecord("s2", "Bob")]
    assert store.record_subjects("watchlist", records) == 2
    assert store.reference("watchlist", "s1") == b"jpeg"
    assert store.keep_subjects("watchlist", ["s1"]) == 1
    info = store.subject_info([("watchlist", "s1"), ("watchlist", "s2")])
    assert info == {("watchlist", "s1"): {"name": "Ann", "category": "elder", "priority": 2, "has_reference": True}}


def test_operators_and_sessions(store: CentreStore) -> None:
    store.set_operator("ana", "hash1")
    store.start_session("t1", "ana", 4e9)
    assert store.session_operator("t1") == "ana"
    store.set_operator("ana", "hash2")  # a new password ends old sessions
    assert store.session_operator("t1") is None and store.operator_password("ana") == "hash2"
    store.start_session("t2", "ana", 4e9)
    store.end_session("t2")
    assert store.session_operator("t2") is None
    assert store.operators() == ["ana"] and store.remove_operator("ana") and store.operators() == []


def test_snapshots_of_closed_events_are_forgotten(store: CentreStore) -> None:
    store.ingest("gatebox/s/b/alert", alert("a1"))
    closed = AlertState(event_id="a1", state="closed").model_dump_json(by_alias=True).encode()
    store.ingest("gatebox/s/b/alert_state", closed)
    assert store.forget_snapshots(closed_before=4e9) == 1
    assert store.snapshot("a1") is None and store.count_events() == 1


def test_passages_are_stored_once_and_counted(store: CentreStore) -> None:
    now = 1_780_000_000.0
    assert store.ingest("gatebox/s/b/passage", passage("p-1", now)).new
    assert not store.ingest("gatebox/s/b/passage", passage("p-1", now)).new
    assert store.ingest("gatebox/s/b/passage", passage("v-1", now + 1, plate="AB1234")).new
    totals = {(r["subject"], r["passages"]) for r in store.passages.hourly(PassageFilter())}
    assert totals == {("person", 1), ("vehicle", 1)}
    [vehicle] = store.passages.search(PassageFilter(plate="ab12"))  # a prefix, any case
    assert vehicle["plate"] == "AB1234" and vehicle["has_snapshot"] is False
    assert len(store.passages.search(PassageFilter(since=now, limit=10))) == 2


def test_two_workers_ingesting_the_same_alerts_at_once_store_each_once(location: Path | str) -> None:
    """Two stores on one database (two console workers, or the console and `centre record`): each
    alert is new to exactly one of them, and stored once."""
    workers = [CentreStore(location), CentreStore(location)]
    new: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def ingest(index: int) -> None:
        start.wait()
        for i in range(40):
            result = workers[index].ingest("gatebox/s/b/alert", alert(f"a{i}"))
            assert result.receipt_id == f"a{i}"  # both confirm: the box may forget it
            if result.new:
                new[index].append(f"a{i}")

    threads = [threading.Thread(target=ingest, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(new[0] + new[1], key=lambda e: int(e[1:])) == [f"a{i}" for i in range(40)]
        assert workers[0].count_events() == 40 == workers[1].count_events()
    finally:
        for worker in workers:
            worker.close()
