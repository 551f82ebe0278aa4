"""What the duty officer needs on the console (issue 17), in process through the console's HTTP API
(FastAPI's TestClient; the broker is nowhere, and where a version is published its MQTT part is replaced):
the subject's name, category, priority and enrolled photo beside an alert, its match strength, the map's
gates and plans, the history searched and paged beyond the newest 200 and exported as CSV with how each
event was disposed, the panic's contact, and which list versions each box holds whoever published them.
The page itself is driven in Chromium by `test_console_duty_browser.py`."""

from __future__ import annotations

import base64
import csv
import io
import sqlite3
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from centre import cli
from centre import console as console_module
from centre import lists as lists_module
from centre.config import CentreConfig, ConsoleConfig, GatePosition, MatchThresholds, SitePlan
from centre.console import Console
from centre.references import thumbnail
from centre.store import SCHEMA, CentreStore, SubjectRecord
from centre.strength import face_strength, match_strength
from centre.web import create_app
from edge.config import GateboxConfig, RecognitionConfig
from edge.protocol.alert import Alert, Location
from edge.protocol.bundle import Manifest, decode, sha256, split
from edge.protocol.embedding import EmbedderSpec
from edge.protocol.lists import ListKind
from edge.protocol.messages import AlertState, Heartbeat, ListAck, ListReport
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.panic import PanicEvent
from edge.protocol.signing import seal
from edge.protocol.sqlite import Schema, open_database
from tests.support.broker import free_port
from tests.support.console import in_process_console, operator_client
from tests.support.simbox import face_jpeg

SITE, BOX, OTHER = "maple-court", "east-gate", "north-gate"
EAST = Location(site_name="Maple Court", gate="East gate", lat=31.2304, lon=121.4742, grid_cell="HP-0412")
LISTS: dict[str, ListKind] = {"watchlist": "alert", "missing_elders": "urgent", "plate_watchlist": "plates"}


def alert_body(subject: str, event_id: str, box: str = BOX, distance: float = 0.46, list_name: str = "watchlist",
               location: Location | None = EAST, **fields: object) -> bytes:  # fmt: skip
    return Alert(
        event_id=event_id, kind="face_match", list=list_name, list_version="v2", subject_id=subject, site=SITE,
        box_id=box, camera="gate", ts=datetime(2026, 11, 30, 8, tzinfo=timezone.utc), frame=1, track_id=1,
        score=round(1 - distance, 4), distance=distance, matching_frames=3, bbox=(1, 2, 30, 40),
        snapshot_jpeg_b64=base64.b64encode(face_jpeg()).decode(), location=location, **fields,  # type: ignore[arg-type]
    ).to_json().encode()  # fmt: skip


def panic_body(event_id: str, contact: str | None, box: str = OTHER) -> bytes:
    now = datetime(2026, 11, 30, 8, tzinfo=timezone.utc)
    return PanicEvent(
        event_id=event_id, message_id=f"{event_id}:1", kind="panic", device_id="btn-402", household="Wang",
        address="Bldg 3, 402", contact=contact, pressed_at=now, received_at=now, sequence=1, presses=1, site=SITE,
        box_id=box,
    ).to_json().encode()  # fmt: skip


def send(console: Console, leaf: str, body: bytes, box: str = BOX) -> None:
    console.store.ingest(f"gatebox/{SITE}/{box}/{leaf}", body)


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    image = tmp_path / "maple-court.png"
    Image.new("RGB", (40, 30), (30, 60, 30)).save(image)
    return image


@pytest.fixture
def console(tmp_path: Path, keys: tuple[Path, Path], plan: Path) -> Iterator[Console]:
    settings = ConsoleConfig(
        db=tmp_path / "centre" / "centre.sqlite3", client_id="duty",
        site_plans={SITE: SitePlan(image=plan, north=31.2320, south=31.2290, west=121.4720, east=121.4760)},
        gate_positions={f"oak-park/{BOX}": GatePosition(lat=31.1, lon=121.3, gate="Oak gate")},
    )  # fmt: skip
    config = CentreConfig(broker=BrokerConfig(port=free_port()), lists=LISTS)
    with in_process_console(config, settings, keys[0]) as console:
        yield console


@pytest.fixture
def api(console: Console) -> Iterator[TestClient]:
    with operator_client(console) as client:
        yield client


def reference_jpeg(tmp_path: Path) -> bytes:
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((900, 600, 3), 200, np.uint8)).save(photo)
    jpeg = thumbnail(photo)
    assert jpeg is not None
    return jpeg


# --- item 1: who the subject is, the enrolled photo beside the snapshot, the match strength -----------


def test_the_consoles_thresholds_are_the_boxes_built_in_ones() -> None:
    console, box = CentreConfig(), GateboxConfig().recognition
    for list_name in ("watchlist", "missing_elders", "staff"):
        point = box.operating_point(list_name)
        assert console.match_thresholds(list_name) == MatchThresholds(
            match_distance=point.match_distance, strong_distance=point.strong_distance
        ), list_name
    onnx = CentreConfig.model_validate({"recognition": {"embedder": "onnx", "onnx": {"model": "/m.onnx"}}})
    box_onnx = RecognitionConfig.model_validate({"embedder": "onnx", "onnx": {"model": "/m.onnx"}})
    point = box_onnx.with_embedder_thresholds().operating_point("missing_elders")
    assert (onnx.match_thresholds("missing_elders").match_distance, onnx.match_thresholds("missing_elders")
            .strong_distance) == (point.match_distance, point.strong_distance)  # fmt: skip


@pytest.mark.parametrize(
    ("distance", "level"),
    [(0.30, "strong"), (0.40, "strong"), (0.41, "good"), (0.47, "good"), (0.48, "weak"), (0.54, "weak"), (0.7, "weak")],
)
def test_a_face_match_is_strong_good_or_weak_against_the_boxes_thresholds(distance: float, level: str) -> None:
    strength = face_strength(distance, MatchThresholds(match_distance=0.54, strong_distance=0.40))
    assert strength.level == level and strength.label == f"{level} match"
    assert f"distance {distance:.2f}" in strength.why and "0.40" in strength.why and "0.54" in strength.why


def test_a_plate_match_is_exact_or_fuzzy() -> None:
    thresholds = MatchThresholds(match_distance=0.54, strong_distance=0.40)
    exact = {"kind": "plate_match", "plate": "粤B12345", "plate_read": "粤B12345", "distance": 0}
    fuzzy = {"kind": "plate_match", "plate": "粤B12345", "plate_read": "粤B1234S", "distance": 1}
    assert match_strength(exact, thresholds).label == "exact plate"  # type: ignore[union-attr]
    assert match_strength(fuzzy, thresholds).label == "fuzzy plate read"  # type: ignore[union-attr]
    assert match_strength({"kind": "panic"}, thresholds) is None


def test_an_alert_shows_the_subjects_name_category_priority_photo_and_strength(
    console: Console, api: TestClient, tmp_path: Path
) -> None:
    photo = reference_jpeg(tmp_path)
    console.store.record_subjects("missing_elders", [SubjectRecord("elder-0042", "Li Xiulan", "dementia", 3, photo)])
    send(console, "alert", alert_body("elder-0042", "e1", list_name="missing_elders", distance=0.44))
    send(console, "alert", alert_body("stranger", "e2", distance=0.52))
    found = {e["event_id"]: e for e in api.get("/api/events").json()["events"]}
    elder, stranger = found["e1"], found["e2"]
    assert (elder["name"], elder["category"], elder["priority"], elder["has_reference"]) == (
        "Li Xiulan", "dementia", 3, True,
    )  # fmt: skip
    assert elder["strength"]["level"] == "strong"  # missing_elders: strong up to 0.45
    assert (stranger["name"], stranger["has_reference"], stranger["strength"]["level"]) == (None, False, "weak")
    assert api.get("/api/events/e1").json()["name"] == "Li Xiulan"
    served = api.get("/api/subjects/missing_elders/elder-0042/reference.jpg")
    assert served.status_code == 200 and served.content == photo and served.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(served.content)) as image:
        assert max(image.size) == 320
    assert api.get("/api/subjects/watchlist/elder-0042/reference.jpg").status_code == 404
    with TestClient(create_app(console)) as anonymous:
        assert anonymous.get("/api/subjects/missing_elders/elder-0042/reference.jpg").status_code == 401


def test_a_reference_photo_is_framed_on_the_face(faces_dir: Path) -> None:
    photo = faces_dir / "kit_harington" / "kit1.jpg"  # 1200 x 599, the face ~150 px wide right of centre
    with Image.open(io.BytesIO(thumbnail(photo) or b"")) as framed:
        assert framed.size == (320, 320)  # the whole photo would be 320 x 160
    flat = faces_dir.parent / "none.png"
    assert thumbnail(flat) is None  # no file, no photo


def test_a_name_the_alert_carries_comes_before_the_centres_record(console: Console, tmp_path: Path) -> None:
    console.store.record_subjects("watchlist", [SubjectRecord("kit", "Old name", "visitor", 1, None)])
    (event,) = console.describe([{"kind": "face_match", "list": "watchlist", "subject_id": "kit",
                                  "subject_name": "Kit H", "subject_category": None, "subject_priority": None,
                                  "distance": 0.3}])  # fmt: skip
    assert (event["name"], event["category"], event["priority"]) == ("Kit H", "visitor", 1)


@pytest.fixture
def broker_replaced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """What the console publishes goes nowhere (its MQTT part replaced); faces are embedded as rows of a
    fake embedder (the photos here are flat colour, no faces): the console's own bookkeeping is tested."""
    published: list[Path] = []

    def fake_publish(broker: BrokerConfig, key: Path, bundle: Path, delta_from: Path | None = None) -> Manifest:
        published.append(bundle)
        name, version, blob = lists_module.read_bundle(bundle)
        return Manifest(list=name, kind="full", version=version, entries=len(decode(blob, "full").entries),
                        size=len(blob), chunks=[sha256(c) for c in split(blob)],
                        created_at=datetime.now(timezone.utc))  # fmt: skip

    def fake_embed(embedding: object, models_dir: object, photos: list[Path]) -> tuple[EmbedderSpec, np.ndarray]:
        return EmbedderSpec(id="dlib-resnet-v1", dim=128), np.ones((len(photos), 128), np.float32)

    monkeypatch.setattr(console_module, "publish", fake_publish)
    monkeypatch.setattr(lists_module, "embed_photos", fake_embed)
    return published


def photo_zip(*subjects: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, subject in enumerate(subjects):
            for n in (2, 1):  # the first photo by name is the reference
                picture = io.BytesIO()
                Image.new("RGB", (400, 500), (40 * i, 30 * n, 90)).save(picture, "JPEG")
                archive.writestr(f"upload/{subject}/{n}.jpg", picture.getvalue())
    return buffer.getvalue()


def test_the_console_keeps_a_reference_photo_per_subject_it_publishes_and_forgets_removed_ones(
    console: Console, api: TestClient, broker_replaced: list[Path]
) -> None:
    meta = b"subject_id,name,category,priority\nelder-0042,Li Xiulan,dementia,3\n"
    created = api.post("/api/lists/missing_elders/versions", data={"mode": "replace"},
                       files={"photos": ("p.zip", photo_zip("elder-0042", "elder-0043"), "application/zip"),
                              "meta": ("m.csv", meta, "text/csv")})  # fmt: skip
    assert created.status_code == 201, created.text
    info = console.store.subject_info([("missing_elders", "elder-0042"), ("missing_elders", "elder-0043")])
    assert info[("missing_elders", "elder-0042")] == {"name": "Li Xiulan", "category": "dementia", "priority": 3,
                                                      "has_reference": True}  # fmt: skip
    reference = api.get("/api/subjects/missing_elders/elder-0042/reference.jpg").content
    with Image.open(io.BytesIO(reference)) as image:  # 1.jpg, the first by name: (0, 30, 90)
        assert image.size == (256, 320) and abs(image.getpixel((100, 100))[1] - 30) < 8
    removed = api.post("/api/lists/missing_elders/remove", json={"subject_ids": ["elder-0043"]})
    assert removed.status_code == 201, removed.text
    assert api.get("/api/subjects/missing_elders/elder-0043/reference.jpg").status_code == 404  # found: photo gone
    assert api.get("/api/subjects/missing_elders/elder-0042/reference.jpg").status_code == 200


def test_centre_lists_build_with_db_records_the_subjects(
    tmp_path: Path, broker_replaced: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    with zipfile.ZipFile(io.BytesIO(photo_zip("kit", "rose"))) as archive:
        archive.extractall(tmp_path / "unzipped")
    (tmp_path / "unzipped" / "upload").rename(photos)
    meta = tmp_path / "meta.csv"
    meta.write_text("subject_id,name,category,priority\nkit,Kit H,visitor,2\n")
    db = tmp_path / "centre.sqlite3"
    argv = ["lists", "build", "--list", "watchlist", "--version", "3", "--photos", str(photos), "--meta", str(meta),
            "--out", str(tmp_path / "v3.gbl"), "--db", str(db)]  # fmt: skip
    assert cli.main(argv) == 0
    assert "recorded 2 subject(s) of watchlist" in capsys.readouterr().out
    store = CentreStore(db)
    try:
        assert store.subject_info([("watchlist", "kit")])[("watchlist", "kit")]["name"] == "Kit H"
        assert store.reference("watchlist", "rose") is not None
    finally:
        store.close()


# --- item 2: the map ---------------------------------------------------------------------------------


def test_the_map_places_gates_from_their_events_and_the_config_and_serves_the_site_plan(
    console: Console, api: TestClient, plan: Path
) -> None:
    send(console, "alert", alert_body("kit", "e1"))
    send(console, "alert", alert_body("kit", "e2", box=OTHER, location=None), box=OTHER)  # no place: not on the map
    site_map = api.get("/api/map").json()
    assert site_map["sites"][0] == {"site": SITE, "plan": {"url": f"/api/map/{SITE}/plan", "north": 31.232,
                                    "south": 31.229, "west": 121.472, "east": 121.476}}  # fmt: skip
    assert {"site": "oak-park", "plan": None} in site_map["sites"]
    gates = {(g["site"], g["box_id"]): g for g in site_map["gates"]}
    assert set(gates) == {(SITE, BOX), ("oak-park", BOX)}
    assert (gates[(SITE, BOX)]["lat"], gates[(SITE, BOX)]["lon"], gates[(SITE, BOX)]["gate"]) == (
        31.2304, 121.4742, "East gate",
    )  # fmt: skip
    assert gates[("oak-park", BOX)]["source"] == "config" and gates[("oak-park", BOX)]["gate"] == "Oak gate"
    served = api.get(f"/api/map/{SITE}/plan")
    assert served.status_code == 200 and served.content == plan.read_bytes()
    assert "default-src 'none'" in served.headers["content-security-policy"]
    assert api.get("/api/map/oak-park/plan").status_code == 404
    with TestClient(create_app(console)) as anonymous:
        assert anonymous.get("/api/map").status_code == 401
        assert anonymous.get(f"/api/map/{SITE}/plan").status_code == 401


def test_a_plans_bounds_and_image_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="north > south"):
        SitePlan(image=tmp_path / "p.png", north=1, south=2, west=0, east=1)
    with pytest.raises(ValueError, match="plan image is one of"):
        SitePlan(image=tmp_path / "p.pdf", north=2, south=1, west=0, east=1)


def test_gates_of_events_stored_before_the_map_are_placed_when_the_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = open_database(path, Schema(SCHEMA.migrations[0]), "an older centre store")
    old.execute(
        "INSERT INTO events (event_id, kind, site, box_id, ts, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("e1", "face_match", SITE, BOX, "2026-11-30T08:00:00Z", 5.0, alert_body("kit", "e1").decode()),
    )
    old.close()
    store = CentreStore(path)
    try:
        assert [(g["box_id"], g["lat"], g["lon"]) for g in store.gates()] == [(BOX, 31.2304, 121.4742)]
    finally:
        store.close()


# --- item 3: history, paged past the newest 200, and its CSV -------------------------------------------


def test_history_pages_past_the_newest_200_in_order(console: Console, api: TestClient) -> None:
    for i in range(250):
        send(console, "alert", alert_body(f"s{i % 5}", f"h{i:03d}"))
    seen, before, pages = [], None, 0
    while True:
        page = api.get("/api/history", params={"limit": 100, **({"before": before} if before else {})}).json()
        seen += [e["event_id"] for e in page["events"]]
        pages += 1
        before = page["next"]
        if before is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 250
    assert seen == sorted(seen, reverse=True)  # received in id order: newest first
    assert api.get("/api/history", params={"before": "yesterday"}).status_code == 422


def test_history_searches_by_subject_list_gate_box_kind_state_and_date(console: Console, api: TestClient) -> None:
    console.store.record_subjects("missing_elders", [SubjectRecord("elder-0042", "Li Xiulan", "dementia", 3)])
    send(console, "alert", alert_body("elder-0042", "a1", list_name="missing_elders"))
    send(console, "alert", alert_body("kit", "a2"))
    send(console, "alert", alert_body("kit", "a3", box=OTHER, location=Location(gate="North gate")), box=OTHER)
    send(console, "panic", panic_body("p1", "daughter 139-0000-1111"), box=OTHER)
    send(console, "alert_state", AlertState(event_id="a2", state="closed").model_dump_json(by_alias=True).encode())
    day = datetime(2026, 11, 30, tzinfo=timezone.utc).timestamp()
    with sqlite3.connect(console.settings.db) as db:  # when each was received: a day apart
        for n, event_id in enumerate(("a1", "a2", "a3", "p1")):
            db.execute("UPDATE events SET received_at = ? WHERE event_id = ?", (day + n * 86400, event_id))

    def found(**params: str) -> list[str]:
        response = api.get("/api/history", params=params)
        assert response.status_code == 200, response.text
        return sorted(e["event_id"] for e in response.json()["events"])

    assert found(subject="xiulan") == ["a1"]  # the name the centre recorded
    assert found(subject="ELDER-00") == ["a1"]
    assert found(subject="kit") == ["a2", "a3"]
    assert found(subject="wang") == ["p1"]  # a panic's household
    assert found(subject="%") == []  # a wildcard is a character
    assert found(list="watchlist") == ["a2", "a3"]
    assert found(gate="North gate") == ["a3"]
    assert found(box_id=OTHER) == ["a3", "p1"]
    assert found(kind="panic") == ["p1"]
    assert found(state="closed") == ["a2"] and found(state="open") == ["a1", "a3", "p1"]
    assert found(since="2026-12-01T00:00:00Z", until="2026-12-03T00:00:00Z") == ["a2", "a3"]
    assert found(since="2026-12-02T00:00:00") == ["a3", "p1"]  # no zone: UTC
    assert found(subject="kit", state="open", site=SITE) == ["a3"]
    assert api.get("/api/history", params={"kind": "everything"}).status_code == 422


def test_the_history_exports_as_csv_with_how_each_event_was_disposed(console: Console, api: TestClient) -> None:
    console.store.record_subjects("watchlist", [SubjectRecord("kit", '=HYPERLINK("http://x")', "visitor", 2)])
    send(console, "alert", alert_body("kit", "a1", distance=0.36))
    send(console, "panic", panic_body("p1", "daughter 139-0000-1111"), box=OTHER)
    send(console, "alert", alert_body("other", "a2"))
    key = (SITE, BOX)
    assert console.store.claim_action(key, "a1", "acked", "patrol sent", "op1", 60) == "ok"
    send(console, "alert_state", AlertState(event_id="a1", state="acked").model_dump_json(by_alias=True).encode())
    assert console.store.claim_action(key, "a1", "closed", "false alarm: his brother", "op2", 60) == "ok"
    send(console, "alert_state", AlertState(event_id="a1", state="closed").model_dump_json(by_alias=True).encode())

    response = api.get("/api/history.csv", params={"subject": "", "box_id": BOX})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="gatebox-events-')
    rows = {row["event_id"]: row for row in csv.DictReader(io.StringIO(response.text))}
    assert set(rows) == {"a1", "a2"}  # the other box's panic is not this search's
    kit = rows["a1"]
    assert kit["name"] == '\'=HYPERLINK("http://x")'  # never a formula in a spreadsheet
    assert (kit["state"], kit["acked_by"], kit["ack_note"], kit["closed_by"], kit["close_note"]) == (
        "closed", "op1", "patrol sent", "op2", "false alarm: his brother",
    )  # fmt: skip
    assert kit["strength"] == "strong match" and kit["gate"] == "East gate" and kit["category"] == "visitor"
    assert kit["acked_at"] <= kit["closed_at"] and kit["acked_at"].startswith(str(datetime.now(timezone.utc).year))
    assert "acked by op1: patrol sent | " in kit["actions"] and "closed by op2" in kit["actions"]
    assert rows["a2"]["acked_by"] == "" and rows["a2"]["state"] == "new"
    panic = next(csv.DictReader(io.StringIO(api.get("/api/history.csv", params={"kind": "panic"}).text)))
    assert (panic["household"], panic["contact"]) == ("Wang", "daughter 139-0000-1111")


# --- item 5: the panic's contact ----------------------------------------------------------------------


def test_a_panic_shows_the_households_contact(console: Console, api: TestClient) -> None:
    send(console, "panic", panic_body("p1", "daughter 139-0000-1111"), box=OTHER)
    send(console, "panic", panic_body("p2", None), box=OTHER)
    found = {e["event_id"]: e for e in api.get("/api/events").json()["events"]}
    assert found["p1"]["contact"] == "daughter 139-0000-1111" and found["p2"]["contact"] is None


# --- item 6: what each box holds, whoever published it -----------------------------------------------


def manifest_payload(keys: tuple[Path, Path], list_name: str, version: int) -> bytes:
    from edge.protocol.signing import load_private_key

    manifest = Manifest(list=list_name, kind="full", version=version, entries=4, size=10, chunks=[sha256(b"x")],
                        created_at=datetime.now(timezone.utc) - timedelta(hours=1))  # fmt: skip
    return seal(manifest.model_dump(mode="json", by_alias=True), load_private_key(keys[0]))


def test_boxes_show_the_list_versions_their_heartbeat_reports_and_cli_versions_are_known(
    console: Console, api: TestClient, keys: tuple[Path, Path], broker_replaced: list[Path]
) -> None:
    beat = Heartbeat(site=SITE, box_id=BOX, lists={"watchlist": ListReport(version=5, subjects=4),
                                                   "rejected": {"bad_signature": 1}})  # fmt: skip
    send(console, "heartbeat", beat.model_dump_json(by_alias=True).encode())
    (box,) = api.get("/api/boxes").json()["boxes"]
    assert box["lists"] == {"watchlist": 5}  # no list_ack reached this console: the heartbeat says it
    listed = {item["list"]: item for item in api.get("/api/lists").json()["lists"]}
    assert listed["watchlist"]["boxes"] == [{"site": SITE, "box_id": BOX, "version": 5}]
    assert listed["watchlist"]["published"] is None and listed["watchlist"]["published_elsewhere"] is None

    # The CLI published v5: its signed manifest, retained on the broker, reaches the console.
    console._note_manifest("gatebox/lists/watchlist/full/manifest", manifest_payload(keys, "watchlist", 5))
    console._note_manifest("gatebox/lists/watchlist/full/manifest", b'{"body": "{}", "sig": "AAAA"}')  # forged
    elsewhere = {i["list"]: i for i in api.get("/api/lists").json()["lists"]}["watchlist"]["published_elsewhere"]
    assert (elsewhere["version"], elsewhere["entries"], elsewhere["kind"]) == (5, 4, "full")
    assert console.store.highest_version("watchlist") == 5
    send(
        console, "list_ack", ListAck(list="watchlist", version=5, entries=4).model_dump_json(by_alias=True).encode()
    )  # not refused

    # Adding to this console's (older, here none) version would drop what v5 holds: refused, saying why.
    refused = api.post("/api/lists/watchlist/versions", data={"mode": "add"},
                       files={"photos": ("p.zip", photo_zip("kit"), "application/zip")})  # fmt: skip
    assert refused.status_code == 400 and "v5 was published elsewhere" in refused.json()["detail"], refused.text
    replaced = api.post("/api/lists/watchlist/versions", data={"mode": "replace"},
                        files={"photos": ("p.zip", photo_zip("kit"), "application/zip")})  # fmt: skip
    assert replaced.status_code == 201 and replaced.json()["version"] == 6, replaced.text  # above the CLI's


def test_a_cli_publication_recorded_with_db_is_the_consoles_next_base(
    console: Console, api: TestClient, tmp_path: Path, broker_replaced: list[Path]
) -> None:
    from centre.cli import _record_cli_publication
    from centre.lists import build

    bundle = tmp_path / "v4.gbl"
    plates = tmp_path / "plates.csv"
    plates.write_text("plate,subject_id,name\n粤B12345,van,white van\n", encoding="utf-8")
    build(console.config, "plate_watchlist", 4, None, None, bundle, plates)
    _record_cli_publication(console.settings.db, bundle, "plate_watchlist", 4, 1)
    listed = {i["list"]: i for i in api.get("/api/lists").json()["lists"]}["plate_watchlist"]
    assert (listed["published"]["version"], listed["published"]["by"]) == (4, "cli")
    more = "plate,subject_id,name\n粤A54321,car,red car\n".encode()
    added = api.post("/api/lists/plate_watchlist/versions", data={"mode": "add"},
                     files={"plates": ("p.csv", more, "text/csv")})  # fmt: skip
    assert added.status_code == 201 and added.json() == {**added.json(), "version": 5, "entries": 2}, added.text
