"""A box's login may be stolen (issue 13): nothing one box sends may stop, overflow or rewrite the
centre. Each hostile message from the issue is refused, counted and logged, and the next good
message is still stored and confirmed; a box changes only its own events; the receivers keep
running (console, `centre record`, `centre watch`) and say so when they don't."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from centre.auth import hash_password
from centre.config import CentreConfig, ConsoleConfig
from centre.console import Console
from centre.record import Recorder
from centre.store import SCHEMA, AmbiguousEvent, CentreStore
from centre.web import _box_view, create_app
from edge.config import GateboxConfig
from edge.protocol.alert import Alert
from edge.protocol.messages import AlertState, Heartbeat, ListAck
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.panic import DeviceNotice, PanicEvent
from edge.protocol.wire import Refusals
from tests.conftest import REPO, start_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.console import CSRF_HEADER, ConsoleServer
from tests.support.simbox import SimBox, face_jpeg
from tests.support.waiting import wait_for

A, B = ("siteA", "box1"), ("siteB", "box2")  # B is the box whose login was stolen
FACE = base64.b64encode(face_jpeg()).decode()


class Receipts:
    """Stands in for the recorder's MQTT client: what it would confirm, per topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []

    def publish(self, topic: str, payload: str, qos: int = 0) -> None:
        self.sent.append((topic, json.loads(payload)["event_ids"]))


def message(box: tuple[str, str], leaf: str, payload: bytes | str | dict[str, object]) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(topic=f"gatebox/{box[0]}/{box[1]}/{leaf}".encode())
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    m.payload = payload.encode() if isinstance(payload, str) else payload
    return m


def alert(box: tuple[str, str], event_id: str = "a1", subject: str = "kit", **raw: object) -> dict:
    """An alert as box `box` sends it; `raw`: fields replaced as they go on the wire (unvalidated)."""
    body = Alert(
        event_id=event_id,
        kind="face_match",
        list="watchlist",
        subject_id=subject,
        site=box[0],
        box_id=box[1],
        camera="gate",
        ts=datetime(2026, 11, 30, tzinfo=timezone.utc),
        frame=1,
        track_id=1,
        score=0.6,
        distance=0.4,
        matching_frames=3,
        bbox=(1, 2, 30, 40),
        snapshot_jpeg_b64=FACE,
    ).model_dump(mode="json", by_alias=True)
    return body | raw


def panic(box: tuple[str, str], event_id: str = "p1", sequence: int = 1, **raw: object) -> dict:
    body = PanicEvent(
        event_id=event_id,
        message_id=f"{event_id}:{sequence}",
        kind="panic",
        device_id="btn-1",
        household="Wang",
        pressed_at=datetime(2026, 11, 30, tzinfo=timezone.utc),
        received_at=datetime(2026, 11, 30, tzinfo=timezone.utc),
        sequence=sequence,
        presses=sequence,
        site=box[0],
        box_id=box[1],
    ).model_dump(mode="json", by_alias=True)
    return body | raw


def with_raw_number(body: dict, field: str, literal: str) -> bytes:
    """`body` with `field` set to a number literal json.dumps cannot write (1e400, a 5,000-digit int)."""
    return json.dumps(body | {field: "@@"}).replace('"@@"', literal).encode()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    store = CentreStore(tmp_path / "centre.sqlite3")
    yield Recorder(store, Receipts())  # type: ignore[arg-type]
    store.close()


# Every hostile message of the issue (and its relatives), all from box B's own topics.
HOSTILE: dict[str, tuple[str, bytes | str | dict]] = {
    # item 1: each of these killed the console's receiver thread
    "list_ack version 2^64 (OverflowError)": ("list_ack", {"list": "watchlist", "version": 2**64}),
    "heartbeat of 100 kB nested arrays (RecursionError)": ("heartbeat", "[" * 50_000 + "]" * 50_000),
    "panic with sequence 2^63": ("panic", panic(B) | {"sequence": 2**63, "message_id": f"p1:{2**63}"}),
    # item 3: a version beyond anything the centre published
    "list_ack version 2^63-1": ("list_ack", {"list": "watchlist", "version": 2**63 - 1, "entries": 1}),
    # item 9: a heartbeat the boxes page could not show
    "heartbeat outbox 5": ("heartbeat", {"outbox": 5}),
    "heartbeat cameras a list": ("heartbeat", {"cameras": [1, 2]}),
    "heartbeat fps 1e400": ("heartbeat", b'{"cameras": {"gate": {"fps": 1e400}}}'),
    "heartbeat NaN": ("heartbeat", b'{"uptime_s": NaN}'),
    "heartbeat of another box": ("heartbeat", {"site": A[0], "box_id": A[1]}),
    # item 12: a 20 MB alert
    "alert of 20 MB": ("alert", alert(B, snapshot_jpeg_b64=base64.b64encode(b"\xff" * 15_000_000).decode())),
    # item 8 and relatives: what the models bound
    "alert with bad base64": ("alert", alert(B, snapshot_jpeg_b64="not base64!!")),
    "alert with a path for an id": ("alert", alert(B) | {"event_id": "../escape-x"}),
    "alert of another box": ("alert", alert(A)),
    "alert with frame 2^63": ("alert", alert(B, frame=2**63)),
    "alert with a 5,000-digit number": ("alert", with_raw_number(alert(B), "track_id", "9" * 5000)),
    "alert with a 100 kB subject": ("alert", alert(B, subject_id="x" * 100_000)),
    "alert with bbox 2^64": ("alert", alert(B, bbox=[0, 0, 2**64, 1])),
    "alert with latitude NaN": ("alert", json.dumps(alert(B, location={"lat": 1.5})).replace("1.5", "NaN").encode()),
    "alert not UTF-8": ("alert", b'{"event_id": "\xff\xfe"}'),
    "alert with a lone surrogate": ("alert", json.dumps(alert(B, subject="@@")).replace("@@", "\\ud800").encode()),
    "alert an array": ("alert", b"[]"),
    "alert deep in a string-free object": ("alert", b'{"a":' * 20 + b"1" + b"}" * 20),
    "panic with a battery list": ("panic", panic(B, battery=[1])),
    "panic receipt for another id": ("panic", panic(B, message_id="someone-elses:1")),
    "list_ack nested 12 deep": ("list_ack", {"list": [[[[[[[[[[[["x"]]]]]]]]]]]], "version": 1}),
    "list_ack version 0": ("list_ack", {"list": "watchlist", "version": 0}),
    "alert_state for no such event": ("alert_state", {"event_id": "nope", "state": "closed"}),
    "alert_state unknown state": ("alert_state", {"event_id": "a1", "state": "deleted"}),
    "availability garbage": ("availability", b"\x1b[2Jgone"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_message_is_refused_and_the_next_good_one_stored(recorder: Recorder, name: str) -> None:
    leaf, payload = HOSTILE[name]
    assert recorder.handle(message(B, leaf, payload)) is None
    assert recorder.counts["refused"] == 1 and sum(recorder.refusals.counts.values()) == 1
    assert recorder.store.events() == [] and recorder.store.boxes() == []
    stored = recorder.handle(message(B, "alert", alert(B, "good")))
    assert stored is not None and stored.new
    assert recorder.client.sent == [(f"gatebox/{B[0]}/{B[1]}/receipt", ["good"])]  # type: ignore[attr-defined]
    assert recorder.handle(message(B, "heartbeat", {"outbox": {"depth": 2}})) is not None
    (box,) = recorder.store.boxes()
    assert _box_view(box, time.time(), 90)["outbox_depth"] == 2


def test_a_refusal_is_logged_once_per_kind_not_once_per_message(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(50):
        recorder.handle(message(B, "list_ack", {"list": "watchlist", "version": 2**64}))
    recorder.handle(message(B, "heartbeat", "[" * 50 + "]" * 50))
    assert recorder.refusals.counts == {"list_ack:invalid": 50, "heartbeat:too_deep": 1}
    assert [r.getMessage().split("[")[-1] for r in caplog.records] == ["list_ack:invalid]", "heartbeat:too_deep]"]


def test_refusals_of_one_kind_are_reported_again_after_a_while_with_how_many_were_not() -> None:
    lines: list[str] = []
    now = [0.0]
    refusals = Refusals(every_s=60, clock=lambda: now[0], say=lines.append)
    for t in (0, 1, 2, 30, 61, 62):
        now[0] = t
        refusals.note("alert:too_large", f"at {t}")
    assert lines == ["at 0 [alert:too_large]", "at 61 (and 3 more like it since the last report) [alert:too_large]"]
    assert refusals.counts == {"alert:too_large": 6}


def test_a_failure_storing_one_message_is_counted_logged_and_not_confirmed(
    recorder: Recorder, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(topic: str, payload: bytes) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(recorder.store, "ingest", broken)
    assert recorder.handle(message(B, "alert", alert(B))) is None  # not confirmed: the box sends it again
    assert recorder.refusals.counts == {"alert:error": 1} and recorder.client.sent == []  # type: ignore[attr-defined]
    assert "disk I/O error" in caplog.text


def test_an_alert_state_from_another_box_never_changes_an_event(recorder: Recorder) -> None:
    recorder.handle(message(A, "alert", alert(A, "x1")))
    assert recorder.handle(message(B, "alert_state", {"event_id": "x1", "state": "closed"})) is None
    assert recorder.refusals.counts == {"alert_state:unknown_event": 1}
    assert recorder.store.event("x1")["state"] == "new"  # type: ignore[index]
    assert recorder.handle(message(A, "alert_state", {"event_id": "x1", "state": "closed"})) is not None
    assert recorder.store.event("x1")["state"] == "closed"  # type: ignore[index]


def test_a_panic_from_another_box_never_changes_its_panic(recorder: Recorder) -> None:
    recorder.handle(message(A, "panic", panic(A, "p1")))
    cancel = panic(B, "p1", sequence=5) | {"kind": "cancel", "household": "Mallory"}
    recorder.handle(message(B, "panic", cancel))
    mine = recorder.store.event("p1", *A)
    assert mine is not None and (mine["kind"], mine["household"], mine["sequence"], mine["box_id"]) == (
        "panic",
        "Wang",
        1,
        A[1],
    )
    assert recorder.refusals.counts == {"panic:clash": 1}  # kept apart as B's own, and logged
    with pytest.raises(AmbiguousEvent):
        recorder.store.event("p1")  # which box's p1: the console must say
    recorder.handle(message(A, "panic", panic(A, "p1", sequence=2)))  # A's own update still applies
    assert recorder.store.event("p1", *A)["presses"] == 2  # type: ignore[index]


@pytest.mark.parametrize("first", ["the real box", "the copying box"])
def test_an_event_id_copied_by_another_box_is_never_merged_and_the_real_alert_is_kept(
    recorder: Recorder, first: str
) -> None:
    real, copy = message(A, "alert", alert(A, "x1", "kit")), message(B, "alert", alert(B, "x1", "decoy"))
    for m in [real, copy] if first == "the real box" else [copy, real]:
        assert recorder.handle(m) is not None
    assert recorder.handle(real) is not None  # A's resend: confirmed again
    assert recorder.refusals.counts == {"alert:clash": 1}
    assert recorder.store.event("x1", *A)["subject_id"] == "kit"  # type: ignore[index]
    assert recorder.store.event("x1", *B)["subject_id"] == "decoy"  # type: ignore[index]
    receipts = recorder.client.sent  # type: ignore[attr-defined]
    assert receipts.count((f"gatebox/{A[0]}/{A[1]}/receipt", ["x1"])) == 2  # A's alert stored: A may forget it


def test_list_versions_come_from_what_the_centre_published_never_from_a_box(recorder: Recorder, tmp_path: Path) -> None:
    store = recorder.store
    store.record_published("watchlist", 1, 3, tmp_path / "v1.gbl", "op1")
    assert recorder.handle(message(B, "list_ack", {"list": "watchlist", "version": 1, "entries": 3})) is not None
    for version in (2, 2**63 - 1):  # never published here
        assert recorder.handle(message(B, "list_ack", {"list": "watchlist", "version": version, "entries": 3})) is None
    assert recorder.refusals.counts == {"list_ack:unpublished_version": 1, "list_ack:invalid": 1}
    assert store.highest_version("watchlist") == 1
    # A list this centre never published (the CLI did): shown as the box says, never the next version's base.
    assert recorder.handle(message(B, "list_ack", {"list": "plate_watchlist", "version": 7, "entries": 1})) is not None
    assert store.highest_version("plate_watchlist") == 0
    store.record_published("watchlist", 2, 3, tmp_path / "v2.gbl", "op1")  # the next publish works
    with pytest.raises(ValueError, match="out of range"):
        store.record_published("watchlist", 2**63, 3, tmp_path / "v.gbl", "op1")


def test_a_heartbeat_stored_before_validation_cannot_break_the_boxes_page(tmp_path: Path) -> None:
    store = CentreStore(tmp_path / "centre.sqlite3")
    for box, beat in enumerate(['{"outbox": 5}', '{"cameras": [1]}', "[" * 5000 + "]" * 5000, "not json"]):
        store._db.execute("INSERT INTO boxes VALUES ('s', ?, 1, ?, ?)", (f"b{box}", time.time(), beat))
    views = [_box_view(b, time.time(), 90) for b in store.boxes()]
    assert [v["outbox_depth"] for v in views] == [None] * 4 and [v["status"] for v in views] == ["online"] * 4


def test_what_the_box_sends_is_what_the_centre_accepts(tmp_path: Path) -> None:
    """The box's own heartbeat, alert state, list ack and device notice, as its link sends them (stamped with
    the box's clock and their age), pass the centre's models."""
    from edge.box import Box
    from edge.comms.link import InMemoryBroker, InMemoryLink
    from edge.health import CameraStatus, heartbeat
    from edge.protocol.messages import AckAlert

    config = GateboxConfig()
    broker = InMemoryBroker()
    sent: dict[str, bytes] = {}
    centre = InMemoryLink(broker, "centre")
    centre.route("gatebox/demo-site/gate-01/+", lambda topic, payload: sent.update({topic.rsplit("/", 1)[1]: payload}))
    centre.start()
    box = Box(config, tmp_path, link=InMemoryLink(broker, "box"))
    try:
        box.states.record(Alert.model_validate(alert(("demo-site", "gate-01"), "a1")))
        box.alerts.apply_ack(AckAlert(command="ack_alert", event_id="a1", state="acked", note="n", by="op",
                                      issued_at=datetime.now(timezone.utc)))  # fmt: skip
        box.on_list_applied("watchlist", 3, 12)
        box.delivery.send(DeviceNotice(kind="low_battery", device_id="btn-1", detail="battery at 5%",
                                       ts=datetime.now(timezone.utc), site="demo-site", box_id="gate-01"))  # fmt: skip
        box.delivery.send(heartbeat(box, [CameraStatus("gate")], time.monotonic()))
        wait_for(lambda: {"alert_state", "list_ack", "device", "heartbeat"} <= set(sent), 10, "every report")
    finally:
        box.close()
        centre.close()
    assert AlertState.model_validate_json(sent["alert_state"]).age_s is not None  # stamped
    ListAck.model_validate_json(sent["list_ack"])
    DeviceNotice.model_validate_json(sent["device"])
    beat = Heartbeat.model_validate_json(sent["heartbeat"])
    assert beat.cameras["gate"].connected is False and beat.outbox is not None


OLD_SCHEMA = """
CREATE TABLE events (event_id TEXT PRIMARY KEY, kind TEXT NOT NULL, site TEXT NOT NULL, box_id TEXT NOT NULL,
    camera TEXT, list_name TEXT, subject_id TEXT, ts TEXT NOT NULL, received_at REAL NOT NULL,
    sequence INTEGER NOT NULL DEFAULT 1, state TEXT NOT NULL DEFAULT 'new', payload TEXT NOT NULL, snapshot BLOB,
    requested_state TEXT, note TEXT, acted_by TEXT, acted_at REAL);
CREATE INDEX events_recent ON events (received_at DESC);
CREATE TABLE actions (event_id TEXT NOT NULL, state TEXT NOT NULL, note TEXT, by TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX actions_event ON actions (event_id);
INSERT INTO events (event_id, kind, site, box_id, ts, received_at, payload, snapshot, requested_state)
    VALUES ('x1', 'face_match', 'siteA', 'box1', '2026-11-30', 1.0, '{}', x'ffd8', 'acked');
INSERT INTO actions VALUES ('x1', 'acked', 'patrol sent', 'op1', 2.0);
"""


def test_a_database_keyed_by_event_id_alone_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "centre.sqlite3"
    with closing(sqlite3.connect(path)) as old:
        old.executescript(OLD_SCHEMA)
    for _ in range(2):  # opening again changes nothing
        store = CentreStore(path)
        event = store.event("x1")
        assert event is not None and event["actions"] == [
            {"state": "acked", "note": "patrol sent", "by": "op1", "at": 2.0}
        ]
        assert store.snapshot("x1") == b"\xff\xd8"
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA.version  # every migration, once
        store.close()
    store = CentreStore(path)
    store.ingest("gatebox/siteB/box2/alert", json.dumps(alert(B, "x1")).encode())  # another box's x1: its own
    assert {(e["site"], e["box_id"]) for e in store.events()} == {A, B}
    assert store.claim_action(A, "x1", "closed", None, "op1", 60) == "ok"
    mine, theirs = store.event("x1", *A), store.event("x1", *B)
    assert mine is not None and isinstance(mine["actions"], list)
    assert [a["state"] for a in mine["actions"]] == ["acked", "closed"]
    assert theirs is not None and theirs["actions"] == []


# --- the real receivers, on a real broker ---------------------------------------------------------

KILLERS: list[tuple[str, str]] = [
    ("list_ack", json.dumps({"list": "watchlist", "version": 2**64})),
    ("heartbeat", "[" * 50_000 + "]" * 50_000),
    ("panic", json.dumps(panic(B) | {"sequence": 2**63, "message_id": f"p1:{2**63}"})),
    ("list_ack", json.dumps({"list": "watchlist", "version": 2**63 - 1, "entries": 1})),
    ("heartbeat", json.dumps({"outbox": 5})),
    ("alert", json.dumps(alert(B, snapshot_jpeg_b64=base64.b64encode(b"\xff" * 520_000).decode()))),
]


def test_the_console_keeps_receiving_after_the_killer_messages(tmp_path: Path, broker: Mosquitto) -> None:
    console = ConsoleServer(tmp_path, broker.port, None, prefix="hostile")
    box = SimBox(broker.port, *B, prefix="hostile")
    try:
        with closing(console.client()) as api:
            for leaf, payload in KILLERS:
                box.publish(leaf, payload)
            good = box.alert(subject="after")
            box.heartbeat(depth=1)
            wait_for(lambda: api.get(f"/api/events/{good.event_id}").status_code == 200, 15, "the good alert stored")
            wait_for(lambda: good.event_id in box.receipts, 10, "its receipt")

            def heartbeat_shown() -> bool:  # the boxes page answers (a heartbeat once made it 500) with the good one
                boxes = api.get("/api/boxes")
                assert boxes.status_code == 200, boxes.text
                return [b["outbox_depth"] for b in boxes.json()["boxes"]] == [1]

            wait_for(heartbeat_shown, 10, "the good heartbeat on the boxes page")
            me = api.get("/api/me").json()
            assert me["receiving"] and me["broker_connected"]
            assert [e["subject_id"] for e in api.get("/api/events").json()["events"]] == ["after"]
    finally:
        box.close()
        console.stop()
    log = console.log.read_text()
    assert "Traceback" not in log and log.count("refused a message") == 5, log  # two list_acks: one kind


def test_centre_record_keeps_receiving_after_the_killer_messages_and_exits_0(tmp_path: Path, broker: Mosquitto) -> None:
    config = write_config(
        tmp_path / "centre.yaml",
        broker={"port": broker.port, "topic_prefix": "hostilerec"},
        console={"record_client_id": f"rec-{tmp_path.name}"[:64]},
    )
    db = tmp_path / "centre.sqlite3"
    recorder = start_cli("--config", config, "centre", "record", "--db", db, "--timeout", "20", log=tmp_path / "log")
    box = SimBox(broker.port, *B, prefix="hostilerec")
    try:
        wait_for(lambda: _heard(db, box), 15, "the recorder to hear the box")
        for leaf, payload in KILLERS:
            box.publish(leaf, payload)
        good = box.alert(subject="after")
        wait_for(lambda: good.event_id in box.receipts, 15, "the good alert confirmed")
        assert recorder.wait(30) == 0
    finally:
        box.close()
        recorder.kill()
    out = (tmp_path / "log").read_text()
    assert "Traceback" not in out and "refused 6" in out, out
    assert [e["subject_id"] for e in CentreStore(db).events()] == ["after"]


def _heard(db: Path, box: SimBox) -> bool:
    """Whether the recorder stored the box's heartbeat (sending another meanwhile)."""
    box.heartbeat()
    if not db.exists():
        return False
    store = CentreStore(db)
    try:
        return bool(store.boxes())
    finally:
        store.close()


def test_centre_record_keeps_its_session_so_what_boxes_send_while_it_is_down_waits(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = write_config(
        tmp_path / "centre.yaml",
        broker={"port": broker.port, "topic_prefix": "recsession"},
        console={"record_client_id": f"rec-{tmp_path.name}"[:64]},
    )
    db = tmp_path / "centre.sqlite3"
    args = ("--config", config, "centre", "record", "--db", db, "--timeout", "30")
    first = start_cli(*args, log=tmp_path / "first.log")
    box = SimBox(broker.port, "site-r", "rbox", prefix="recsession")
    try:
        wait_for(lambda: _heard(db, box), 15, "the recorder to hear the box")
        first.terminate()
        first.wait(10)
        # Sent once while the recorder is down (no resend by this box): only the broker can keep it.
        sent = box.alert(subject="while-down")
        second = start_cli(*args, log=tmp_path / "second.log")
        try:
            wait_for(lambda: sent.event_id in box.receipts, 15, "the alert sent while the recorder was down")
        finally:
            second.kill()
    finally:
        first.kill()
        box.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread dies on purpose
def test_a_dead_receiver_turns_the_console_red(
    tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    class Fatal(BaseException):
        """Nothing a message does raises this; a bug past every net could."""

    config = CentreConfig(broker=BrokerConfig(port=broker.port, topic_prefix="deadrecv"))
    settings = ConsoleConfig(db=tmp_path / "centre.sqlite3", client_id=f"dead-{tmp_path.name}"[:64])
    console = Console(config, settings, None)
    try:
        console.store.set_operator("op1", hash_password("correct horse battery"))
        with TestClient(create_app(console), headers={CSRF_HEADER: "1"}) as api:
            api.post("/api/login", json={"name": "op1", "password": "correct horse battery"})
            wait_for(lambda: api.get("/api/me").json()["broker_connected"], 10, "the broker link")
            assert api.get("/api/me").json()["receiving"]

            def fatal(message: mqtt.MQTTMessage) -> None:
                raise Fatal("boom")

            console.recorder.handle = fatal  # type: ignore[method-assign]
            box = mqtt.Client(CallbackAPIVersion.VERSION2)
            box.connect("127.0.0.1", broker.port)
            box.loop_start()
            box.publish("deadrecv/s/b/heartbeat", "{}", qos=1).wait_for_publish(5)
            box.disconnect()
            box.loop_stop()
            wait_for(lambda: not api.get("/api/me").json()["receiving"], 10, "the page told the receiver stopped")
        assert "the console's receiver stopped" in caplog.text
    finally:
        console.close()


def test_centre_watch_writes_no_file_outside_its_folder_and_no_escape_to_the_terminal(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = write_config(tmp_path / "centre.yaml", broker={"port": broker.port, "topic_prefix": "hostilewatch"})
    snaps = tmp_path / "snaps"
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "--config",
            str(config),
            "centre",
            "watch",
            "--count",
            "1",
            "--timeout",
            "30",
            "--snapshots",
            str(snaps),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    box = SimBox(broker.port, *B, prefix="hostilewatch")
    try:
        assert watch.stdout is not None and watch.stdout.readline().startswith("BOX siteB/box2 online")
        box.publish("availability", "\x1b]0;pwned\x07online")
        for bad in (
            alert(B) | {"event_id": "../escape-x"},
            alert(B, "b1", snapshot_jpeg_b64="not base64!!"),
            alert(B, "b2", snapshot_jpeg_b64="QUJD" * 3 + "="),
        ):
            box.publish("alert", json.dumps(bad))
        box.publish("alert", json.dumps(alert(B, "ok1", subject="\x1b[31mred\x1b[0m\u202eevil\r")))
        out, err = watch.communicate(timeout=30)
    finally:
        watch.kill()
        box.close()
    assert watch.returncode == 0, err
    assert not (tmp_path / "escape-x.jpg").exists() and sorted(p.name for p in snaps.iterdir()) == ["ok1.jpg"]
    assert "\x1b" not in out + err and "\u202e" not in out + err and "\r" not in out + err
    assert "subject=\\u001b[31mred\\u001b[0m\\u202eevil\\u000d" in out
    assert "BOX siteB/box2 \\u001b]0;pwned\\u0007online" in out
    # Each kind of fault reported (then at most once a minute): the path as an id, the bad base64.
    assert "Traceback" not in err and err.count("warning: skipped malformed alert") == 2, err
    assert "event_id: String should match pattern" in err and "snapshot_jpeg_b64: Value error, not valid base64" in err
