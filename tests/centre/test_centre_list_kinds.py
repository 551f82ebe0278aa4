"""At the centre too, list behaviour comes from each list's `kind`, never from its name (issue 15, item 2):
the centre's config reads `lists` as the box's does (the kinds are the contract's, `edge.protocol.lists`),
the console tells the page each list's kind (the page shows alerts of urgent lists as urgent), and a
`plates` list, whatever its name, is the one built from a plate CSV. In process: no broker, no subprocess."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from centre.config import CentreConfig, ConsoleConfig, load_config
from centre.console import Console
from centre.lists import build, read_bundle
from edge.config import GateboxConfig
from edge.config import load_config as load_box_config
from edge.protocol.alert import Alert
from edge.protocol.bundle import decode
from edge.protocol.errors import ConfigError, InputError
from edge.protocol.lists import BUILT_IN_LIST_KINDS, ListKind
from edge.protocol.mqtt import BrokerConfig
from tests.conftest import write_config
from tests.support.broker import free_port
from tests.support.console import in_process_console, operator_client
from tests.support.simbox import face_jpeg

RENAMED: dict[str, ListKind] = {
    "suspects": "alert",
    "lost_residents": "urgent",
    "wanderers": "leaving-only",
    "cars": "plates",
}


def test_the_centre_reads_lists_as_names_with_kinds_or_as_plain_names(tmp_path: Path) -> None:
    renamed = load_config(write_config(tmp_path / "renamed.yaml", lists=RENAMED))
    assert renamed.lists == RENAMED
    plain = load_config(write_config(tmp_path / "plain.yaml", lists=[*BUILT_IN_LIST_KINDS, "staff"]))
    assert plain.lists == {**BUILT_IN_LIST_KINDS, "staff": "alert"}  # the shipped names keep their old rules
    assert CentreConfig().lists == BUILT_IN_LIST_KINDS == GateboxConfig().lists


@pytest.mark.parametrize(
    ("lists", "error"),
    [
        ({"watchlist": "alert", "wanderers": "leaving"}, "lists.wanderers: Input should be 'alert', 'urgent'"),
        (["watchlist", {"wanderers": "leaving-only"}], "lists: Value error, give list names"),
        ({"bad name": "alert"}, "lists.bad name.[key]"),
    ],
)
def test_a_bad_list_kind_is_an_error_naming_the_field(tmp_path: Path, lists: object, error: str) -> None:
    path = write_config(tmp_path / "centre.yaml", lists=lists)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and error in str(caught.value), caught.value


def test_one_file_with_renamed_lists_gives_both_programs_the_same_kinds(tmp_path: Path) -> None:
    path = write_config(tmp_path / "gatebox.yaml", box={"site": "s", "box_id": "b"}, console={"port": 18080},
                        lists=RENAMED)  # fmt: skip
    assert load_config(path).lists == load_box_config(path).lists == RENAMED


@pytest.fixture
def console(tmp_path: Path, keys: tuple[Path, Path]) -> Iterator[Console]:
    """A console over renamed lists, in process; its broker is nowhere (nothing here needs one)."""
    config = CentreConfig(broker=BrokerConfig(port=free_port()), lists=RENAMED)
    settings = ConsoleConfig(db=tmp_path / "centre.sqlite3", client_id="kinds")
    with in_process_console(config, settings, keys[0]) as console:
        yield console


@pytest.fixture
def api(console: Console) -> Iterator[TestClient]:
    with operator_client(console) as client:
        yield client


def seen_on(list_name: str, event_id: str) -> bytes:
    return Alert(
        event_id=event_id, kind="face_match", list=list_name, subject_id="mr-li", site="s", box_id="b",
        camera="gate", ts=datetime(2026, 11, 30, tzinfo=timezone.utc), frame=1, track_id=1, score=0.6, distance=0.4,
        matching_frames=3, bbox=(1, 2, 30, 40), snapshot_jpeg_b64=base64.b64encode(face_jpeg()).decode(),
    ).model_dump_json(by_alias=True).encode()  # fmt: skip


def test_the_page_learns_each_lists_kind_so_a_renamed_urgent_list_is_shown_urgent(
    console: Console, api: TestClient
) -> None:
    me = api.get("/api/me").json()
    assert me["lists"] == [{"list": name, "kind": kind} for name, kind in RENAMED.items()]
    listed = {item["list"]: item["kind"] for item in api.get("/api/lists").json()["lists"]}
    assert listed == RENAMED
    console.store.ingest("gatebox/s/b/alert", seen_on("lost_residents", "e1"))
    (event,) = api.get("/api/events").json()["events"]
    # What the page shows urgent: an event whose list is of kind `urgent` or `leaving-only`.
    assert dict((item["list"], item["kind"]) for item in me["lists"])[event["list"]] == "urgent"


def photos_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("upload/mr-li/1.jpg", face_jpeg())
    return buffer.getvalue()


PLATES = "plate,subject_id,name\n粤B12345,van,white van\n".encode()


@pytest.mark.parametrize(
    ("list_name", "files", "error"),
    [
        ("cars", {"photos": ("p.zip", photos_zip(), "application/zip")}, "cars is a `plates` list"),
        ("lost_residents", {"plates": ("p.csv", PLATES, "text/csv")}, "lost_residents is a face list (`urgent`)"),
    ],
)
def test_an_upload_is_refused_unless_it_is_what_the_lists_kind_takes(
    api: TestClient, list_name: str, files: dict, error: str
) -> None:
    refused = api.post(f"/api/lists/{list_name}/versions", data={"mode": "replace"}, files=files)
    assert refused.status_code == 400 and error in refused.json()["detail"], refused.text


def test_centre_lists_build_takes_plates_for_a_plates_list_whatever_its_name(tmp_path: Path) -> None:
    config = CentreConfig(lists=RENAMED)
    plates = tmp_path / "plates.csv"
    plates.write_bytes(PLATES)
    assert build(config, "cars", 1, None, None, tmp_path / "cars.gbl", plates) == 1
    name, version, blob = read_bundle(tmp_path / "cars.gbl")
    assert (name, version, [e.plate for e in decode(blob, "full").entries]) == ("cars", 1, ["粤B12345"])
    with pytest.raises(InputError, match="plate_watchlist"):  # the old name means nothing here
        build(config, "plate_watchlist", 1, None, None, tmp_path / "old.gbl", plates)
    (tmp_path / "photos" / "mr-li").mkdir(parents=True)
    with pytest.raises(InputError, match=r"cars is a `plates` list: give --plates"):
        build(config, "cars", 2, tmp_path / "photos", None, tmp_path / "faces.gbl")
    with pytest.raises(InputError, match=r"wanderers is a face list \(`leaving-only`\): give --photos"):
        build(config, "wanderers", 1, None, None, tmp_path / "wanderers.gbl", plates)
