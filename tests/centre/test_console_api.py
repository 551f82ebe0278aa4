"""The console's HTTP API (issue 9): `gatebox centre serve` in its own process on a real mosquitto,
with simulated boxes speaking the box protocol. Every endpoint, with its bad input: no session,
unknown event, double ack, malformed bodies and uploads."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from edge.protocol.bundle import Manifest
from edge.protocol.signing import load_public_key, open_sealed
from tests.conftest import REPO
from tests.support.broker import Mosquitto
from tests.support.console import OPERATOR, PASSWORD, ConsoleServer
from tests.support.mqtt import Collector
from tests.support.simbox import SimBox, face_jpeg
from tests.support.waiting import wait_for

RESEND_AFTER_S = 3  # an unconfirmed ack may be sent again after this

PROTECTED = [
    ("GET", "/api/me"),
    ("GET", "/api/events"),
    ("GET", "/api/events/x"),
    ("GET", "/api/events/x/snapshot.jpg"),
    ("POST", "/api/events/x/ack"),
    ("POST", "/api/events/x/close"),
    ("GET", "/api/boxes"),
    ("GET", "/api/lists"),
    ("POST", "/api/lists/watchlist/versions"),
    ("POST", "/api/lists/watchlist/remove"),
    ("GET", "/api/stream"),
    ("POST", "/api/logout"),
]


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, keys: tuple[Path, Path]
) -> Iterator[ConsoleServer]:
    server = ConsoleServer(tmp_path_factory.mktemp("console"), broker.port, keys[0], max_upload_mb=1,
                           ack_resend_after_s=RESEND_AFTER_S)  # fmt: skip
    yield server
    server.stop()
    assert "Traceback" not in server.log.read_text(), server.log.read_text()


@pytest.fixture(scope="module")
def api(console: ConsoleServer) -> Iterator[httpx.Client]:
    with closing(console.client()) as client:
        yield client


@pytest.fixture
def box(request: pytest.FixtureRequest, broker: Mosquitto, keys: tuple[Path, Path]) -> Iterator[SimBox]:
    sim = SimBox(broker.port, "site-a", request.node.name[-40:].replace("[", "-").strip("]"), load_public_key(keys[1]))
    yield sim
    sim.close()


def feed(api: httpx.Client, **params: str) -> list[dict]:
    response = api.get("/api/events", params={k: v for k, v in params.items() if v})
    assert response.status_code == 200, response.text
    return response.json()["events"]


def wait_event(api: httpx.Client, event_id: str, predicate=lambda e: True, timeout: float = 15) -> dict:
    found: dict = {}

    def arrived() -> bool:
        response = api.get(f"/api/events/{event_id}")
        if response.status_code == 200 and predicate(response.json()):
            found.update(response.json())
            return True
        return False

    wait_for(arrived, timeout, f"event {event_id} on the console", interval=0.1)
    return found


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_nothing_is_served_without_a_login(console: ConsoleServer, method: str, path: str) -> None:
    with closing(console.client(login=False)) as anonymous:
        assert anonymous.request(method, path).status_code == 401
        anonymous.cookies.set("gatebox_session", "forged-token")
        assert anonymous.request(method, path).status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": OPERATOR, "password": PASSWORD}, 200),
        ({"name": OPERATOR, "password": "wrong password"}, 401),
        ({"name": "nobody", "password": PASSWORD}, 401),
        ({"name": OPERATOR}, 422),
        ({"name": OPERATOR, "password": PASSWORD, "admin": True}, 422),
    ],
)
def test_login(console: ConsoleServer, body: dict, status: int) -> None:
    with closing(console.client(login=False)) as client:
        response = client.post("/api/login", json=body)
        assert response.status_code == status, response.text
        if status == 200:
            cookie = response.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert client.get("/api/me").json()["name"] == OPERATOR


def test_repeated_wrong_passwords_pause_that_name(console: ConsoleServer) -> None:
    with closing(console.client(login=False)) as client:
        statuses = [client.post("/api/login", json={"name": "mallory", "password": f"guess{i}"}).status_code
                    for i in range(7)]  # fmt: skip
        assert statuses == [401] * 5 + [429] * 2
        assert client.post("/api/login", json={"name": OPERATOR, "password": PASSWORD}).status_code == 200


def test_logout_ends_the_session_and_the_page_is_public(console: ConsoleServer) -> None:
    client = console.client()
    stolen = client.cookies["gatebox_session"]
    assert client.post("/api/logout").status_code == 200
    with closing(console.client(login=False)) as other:
        other.cookies.set("gatebox_session", stolen)
        assert other.get("/api/events").status_code == 401
        page = other.get("/")
        assert page.status_code == 200 and "gatebox centre" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert other.get("/static/console.js").status_code == 200


def test_events_are_stored_once_panics_first_and_confirmed(api: httpx.Client, box: SimBox, broker: Mosquitto) -> None:
    alert = box.alert(subject="kit")
    box.alert(subject="kit", event_id=alert.event_id)  # a resend: the box missed our receipt
    first = box.panic(device="btn-7")
    box.panic(device="btn-7", event_id=first.event_id, sequence=3)  # two more presses
    box.panic(device="btn-7", event_id=first.event_id, sequence=2)  # an older copy arriving late
    wait_event(api, first.event_id, lambda e: e["presses"] == 3)
    mine = feed(api, box_id=box.box_id, state="")
    assert [(e["kind"], e["subject_id"]) for e in mine] == [("panic", "btn-7"), ("face_match", "kit")]
    assert mine[0]["household"] == "Wang" and mine[1]["score"] == pytest.approx(0.62)
    wait_for(lambda: {alert.event_id, f"{first.event_id}:3"} <= box.receipts, 10, "receipts to reach the box")
    everything = feed(api, state="", limit="500")
    assert [e["event_id"] for e in everything].count(alert.event_id) == 1
    panics_first = [e["panic"] and e["state"] != "closed" for e in everything]
    assert panics_first == sorted(panics_first, reverse=True)

    snapshot = api.get(f"/api/events/{alert.event_id}/snapshot.jpg")
    assert snapshot.status_code == 200 and snapshot.content[:2] == b"\xff\xd8"
    assert snapshot.headers["content-type"] == "image/jpeg"
    assert api.get(f"/api/events/{first.event_id}/snapshot.jpg").status_code == 404  # a panic has no face


def test_a_panic_shows_the_view_its_box_sent_with_it(api: httpx.Client, box: SimBox) -> None:
    view = face_jpeg(seed=7)
    first = box.panic(device="btn-9", view=view)
    box.panic(device="btn-9", event_id=first.event_id, sequence=2)  # an update: no picture, the first stays
    event = wait_event(api, first.event_id, lambda e: e["presses"] == 2)
    assert event["has_snapshot"] and "snapshot_jpeg_b64" not in json.dumps(event)
    assert api.get(f"/api/events/{first.event_id}/snapshot.jpg").content == view


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "panic"}, ["panic"]),
        ({"kind": "alert"}, ["face_match"]),
        ({"kind": "face_match"}, ["face_match"]),
        ({"kind": "plate_match"}, []),
        ({"state": "new"}, ["panic", "face_match"]),
        ({"state": "closed"}, []),
        ({"site": "elsewhere"}, []),
    ],
)
def test_feed_filters(api: httpx.Client, box: SimBox, params: dict, expected: list[str]) -> None:
    box.alert()
    event = box.panic()
    wait_event(api, event.event_id)
    assert [e["kind"] for e in feed(api, box_id=box.box_id, **params)] == expected


@pytest.mark.parametrize(
    "params", [{"kind": "bogus"}, {"state": "maybe"}, {"limit": "0"}, {"limit": "100000"}, {"offset": "-1"}]
)
def test_bad_feed_queries_are_refused(api: httpx.Client, params: dict) -> None:
    assert api.get("/api/events", params=params).status_code == 422


def test_ack_then_close_reach_the_box_and_come_back_as_its_state(api: httpx.Client, box: SimBox) -> None:
    alert = box.alert()
    wait_event(api, alert.event_id)
    response = api.post(f"/api/events/{alert.event_id}/ack", json={"note": "patrol sent"})
    assert response.status_code == 202, response.text
    assert response.json()["requested_state"] == "acked"
    assert api.post(f"/api/events/{alert.event_id}/ack", json={}).status_code == 409  # double ack
    acked = wait_event(api, alert.event_id, lambda e: e["state"] == "acked")
    (command,) = box.commands  # signed with the centre's key (the box verified it)
    assert (command.event_id, command.state, command.note, command.by) == (alert.event_id, "acked", "patrol sent",
                                                                           OPERATOR)  # fmt: skip
    assert acked["actions"][0]["by"] == OPERATOR and acked["note"] == "patrol sent"

    assert api.post(f"/api/events/{alert.event_id}/close", json={"note": "false alarm"}).status_code == 202
    closed = wait_event(api, alert.event_id, lambda e: e["state"] == "closed")
    assert [a["state"] for a in closed["actions"]] == ["acked", "closed"]
    assert api.post(f"/api/events/{alert.event_id}/close", json={}).status_code == 409
    assert api.post(f"/api/events/{alert.event_id}/ack", json={}).status_code == 409  # never backwards
    assert alert.event_id not in [e["event_id"] for e in feed(api, box_id=box.box_id, state="open")]
    assert box.refused_commands == 0 and len(box.commands) == 2


def test_an_ack_to_an_offline_box_can_be_sent_again_later(api: httpx.Client, broker: Mosquitto,
                                                          keys: tuple[Path, Path]) -> None:  # fmt: skip
    box = SimBox(broker.port, "site-a", "sleepy", load_public_key(keys[1]))
    alert = box.alert()
    wait_event(api, alert.event_id)
    box.close()  # gone before the operator acts: the first command reaches nobody
    assert api.post(f"/api/events/{alert.event_id}/ack", json={"note": "first try"}).status_code == 202
    assert api.post(f"/api/events/{alert.event_id}/ack", json={}).status_code == 409  # too soon to resend
    back = SimBox(broker.port, "site-a", "sleepy", load_public_key(keys[1]))
    try:
        resent = lambda: api.post(f"/api/events/{alert.event_id}/ack", json={"note": "second try"})  # noqa: E731
        wait_for(lambda: resent().status_code == 202, RESEND_AFTER_S + 10, "the console to allow a resend", 0.2)
        acked = wait_event(api, alert.event_id, lambda e: e["state"] == "acked")
        assert [(a["state"], a["note"]) for a in acked["actions"]] == [("acked", "first try"), ("acked", "second try")]
        assert [c.note for c in back.commands] == ["second try"]
        assert api.post(f"/api/events/{alert.event_id}/ack", json={}).status_code == 409  # confirmed: done
    finally:
        back.close()


def test_a_panic_can_be_closed_directly(api: httpx.Client, box: SimBox) -> None:
    panic = box.panic()
    wait_event(api, panic.event_id)
    assert api.post(f"/api/events/{panic.event_id}/close", json={"note": "resident fine"}).status_code == 202
    wait_event(api, panic.event_id, lambda e: e["state"] == "closed")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/events/no-such-event", None, 404),
        ("GET", "/api/events/no-such-event/snapshot.jpg", None, 404),
        ("POST", "/api/events/no-such-event/ack", {}, 404),
        ("POST", "/api/events/no-such-event/close", {"note": "x"}, 404),
        ("POST", "/api/events/no-such-event/ack", {"note": "x" * 1001}, 422),
        ("POST", "/api/events/no-such-event/ack", {"state": "closed"}, 422),
        ("POST", "/api/lists/no_such_list/remove", {"subject_ids": ["a"]}, 404),
        ("POST", "/api/lists/watchlist/remove", {"subject_ids": []}, 422),
    ],
)
def test_bad_requests(api: httpx.Client, method: str, path: str, body: dict | None, status: int) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert "detail" in response.json()


def test_garbage_from_a_box_is_refused_and_the_console_carries_on(api: httpx.Client, box: SimBox,
                                                                   console: ConsoleServer) -> None:  # fmt: skip
    for leaf, payload in [("alert", "{not json"), ("alert", json.dumps({"schema": "gatebox.alert/1"})),
                          ("panic", "[]"), ("heartbeat", "nope"), ("alert_state", json.dumps({"state": "x"})),
                          ("list_ack", json.dumps({"list": "watchlist"}))]:  # fmt: skip
        box.publish(leaf, payload)
    alert = box.alert()  # still stored after all that
    wait_event(api, alert.event_id)
    wait_for(lambda: console.log.read_text().count("refused a message") >= 6, 10, "six refusals logged")
    assert console.process.poll() is None


def test_box_health_and_a_dead_box_shown_offline_within_the_will(api: httpx.Client, broker: Mosquitto,
                                                                 keys: tuple[Path, Path]) -> None:  # fmt: skip
    # A box in its own process, killed without a goodbye: only the broker's will can tell.
    script = (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from tests.support.simbox import SimBox; "
        "b = SimBox(int(sys.argv[1]), 'site-h', 'doomed', keepalive=5); b.heartbeat(fps=12.5, depth=4, "
        "lists={'watchlist': 7}); b.list_ack('watchlist', 7); print('up', flush=True); time.sleep(300)"
    )
    doomed = subprocess.Popen([sys.executable, "-c", script, str(broker.port), str(REPO)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert doomed.stdout is not None and doomed.stdout.readline().strip() == "up"

        def the_box() -> dict | None:
            boxes = api.get("/api/boxes").json()["boxes"]
            return next((b for b in boxes if b["box_id"] == "doomed"), None)

        wait_for(lambda: (the_box() or {}).get("lists") == {"watchlist": 7}, 10, "the box's heartbeat and list ack")
        health = the_box()
        assert health is not None and health["status"] == "online" and health["outbox_depth"] == 4
        assert health["cameras"] == {"gate": {"fps": 12.5, "connected": True}}
        lists = {item["list"]: item for item in api.get("/api/lists").json()["lists"]}
        assert {"site": "site-h", "box_id": "doomed", "version": 7} in lists["watchlist"]["boxes"]
        doomed.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: (the_box() or {}).get("status") == "offline", 10, "the box shown offline")
        assert time.monotonic() - killed < 1.5 * 5 + 1  # the will's time for a 5 s keepalive
    finally:
        doomed.kill()
        doomed.wait()


def plate_csv(*plates: str) -> bytes:
    return ("plate,subject_id,name\n" + "".join(f"{p},{p},car {i}\n" for i, p in enumerate(plates))).encode()


def photos_zip(faces_dir: Path, people: dict[str, list[str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for subject, photos in people.items():
            for photo in photos:
                archive.write(faces_dir / photo, f"upload/{subject}/{Path(photo).name}")
    return buffer.getvalue()


def test_lists_published_signed_added_to_and_shrunk(api: httpx.Client, broker: Mosquitto, keys: tuple[Path, Path],
                                                    faces_dir: Path) -> None:  # fmt: skip
    manifests = Collector(broker.port, "gatebox/lists/+/full/manifest")
    try:
        first = api.post("/api/lists/plate_watchlist/versions", data={"mode": "replace"},
                         files={"plates": ("plates.csv", plate_csv("粤B12345", "京A88888"), "text/csv")})  # fmt: skip
        assert first.status_code == 201, first.text
        assert first.json()["entries"] == 2
        added = api.post("/api/lists/plate_watchlist/versions", data={"mode": "add"},
                         files={"plates": ("more.csv", plate_csv("沪C55555"), "text/csv")})  # fmt: skip
        assert added.status_code == 201 and added.json()["entries"] == 3
        assert added.json()["version"] == first.json()["version"] + 1
        removed = api.post("/api/lists/plate_watchlist/remove", json={"subject_ids": ["京A88888"]})
        assert removed.status_code == 201 and removed.json()["entries"] == 2
        missing = api.post("/api/lists/plate_watchlist/remove", json={"subject_ids": ["京A88888"]})
        assert missing.status_code == 400 and "not on plate_watchlist" in missing.json()["detail"]

        # What the boxes get: a retained manifest signed with the centre's key, the latest version.
        public = load_public_key(keys[1])

        seen: list[Manifest] = []

        def latest_arrived() -> bool:
            for message in manifests.drain(0.3):
                manifest = Manifest.model_validate(open_sealed(bytes(message.payload), public))
                if manifest.version == removed.json()["version"]:
                    seen.append(manifest)
            return bool(seen)

        wait_for(latest_arrived, 10, "the latest manifest")
        assert seen[0].entries == 2 and seen[0].list == "plate_watchlist"

        faces = api.post("/api/lists/missing_elders/versions", data={"mode": "replace"},
                         files={"photos": ("elders.zip", photos_zip(faces_dir, {
                             "elder-kit": ["kit_harington/kit1.jpg", "kit_harington/kit2.jpg"],
                             "elder-rose": ["rose_leslie/rose1.jpg"]}), "application/zip")})  # fmt: skip
        assert faces.status_code == 201, faces.text
        assert faces.json()["entries"] == 2
        listed = {item["list"]: item for item in api.get("/api/lists").json()["lists"]}
        assert listed["missing_elders"]["published"]["entries"] == 2
        assert listed["missing_elders"]["published"]["by"] == OPERATOR
    finally:
        manifests.close()


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        ({}, 400, "send either"),
        ({"photos": ("x.zip", b"not a zip", "application/zip")}, 400, "zip archive"),
        ({"photos": ("x.zip", b"PK\x05\x06" + b"\0" * 18, "application/zip")}, 400, "no SUBJECT/PHOTO"),
        ({"plates": ("p.csv", b"plate\nnot-a-plate\n", "text/csv")}, 400, "plates.csv:2"),
        ({"plates": ("p.csv", b"plate\n" + b"x" * (1024 * 1024 + 1), "text/csv")}, 413, "larger than"),
    ],
)
def test_bad_uploads(api: httpx.Client, files: dict, status: int, message: str) -> None:
    list_name = "plate_watchlist" if "plates" in files else "watchlist"  # what each list's kind takes
    response = api.post(f"/api/lists/{list_name}/versions", data={"mode": "add"}, files=files)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_a_photo_without_a_face_is_named(api: httpx.Client, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    blank = tmp_path / "wall.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    response = api.post(
        "/api/lists/watchlist/versions",
        data={"mode": "add"},
        files={"photos": ("w.zip", photos_zip(tmp_path, {"someone": ["wall.jpg"]}), "application/zip")},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("someone/wall.jpg: no face found")


def test_stream_tells_the_page_what_changed(console: ConsoleServer, box: SimBox) -> None:
    with closing(console.client()) as client, client.stream("GET", "/api/stream", timeout=20) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: hello"
        box.panic()
        changes = []
        deadline = time.monotonic() + 15
        for line in lines:
            if line.startswith("data: ") and "kind" in line:
                changes.append(json.loads(line[6:]))
                if any(c["kind"] == "events" and c.get("new_panic") for c in changes):
                    break
            assert time.monotonic() < deadline, changes


def test_what_boxes_send_while_the_console_restarts_waits_for_it(tmp_path: Path, broker: Mosquitto,
                                                                 keys: tuple[Path, Path]) -> None:  # fmt: skip
    first = ConsoleServer(tmp_path, broker.port, keys[0], prefix="restarts")
    box = SimBox(broker.port, "site-r", "rbox", load_public_key(keys[1]), prefix="restarts")
    try:
        alert = box.alert()
        with closing(first.client()) as api:
            wait_event(api, alert.event_id)
        first.stop()
        # Sent once, confirmed by the broker alone: only the console's persistent session keeps them.
        box.list_ack("watchlist", 5)
        state = {"schema": "gatebox.alert_state/1", "event_id": alert.event_id, "state": "acked", "note": "by phone",
                 "by": "op9", "ts": time.time()}  # fmt: skip
        box.publish("alert_state", state).wait_for_publish(5)
        second = ConsoleServer(tmp_path, broker.port, keys[0], prefix="restarts")  # same database, same session
        try:
            with closing(second.client()) as api:
                wait_event(api, alert.event_id, lambda e: e["state"] == "acked")
                lists = {item["list"]: item for item in api.get("/api/lists").json()["lists"]}
                assert {"site": "site-r", "box_id": "rbox", "version": 5} in lists["watchlist"]["boxes"]
        finally:
            second.stop()
    finally:
        box.close()
