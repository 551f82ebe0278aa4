"""Galleries and lists carry the embedder that made their faces (issue 14, item 5): a bundle records
its embedder id and width, a box refuses a list made by another embedder (counted as
`embedder_mismatch`, the list in force stays), the store never mixes two embedders in a list, and a
box refuses to start on a gallery made by another embedder. Bundles and stores from before
embedder ids are dlib's 128-d."""

from __future__ import annotations

import json
import logging
import sqlite3
import struct
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from centre.config import CentreConfig
from centre.lists import build, delta_blob, merged_blob, read_bundle
from edge.config import load_config
from edge.doctor import check_lists
from edge.lists.sync import ListSync
from edge.protocol.bundle import MAGIC, BundleError, ListEntry, Manifest, decode, encode, sha256, split
from edge.protocol.embedding import DLIB_EMBEDDER, EmbedderMismatch, EmbedderSpec
from edge.protocol.errors import InputError
from edge.protocol.signing import generate_keypair, load_private_key, load_public_key, seal
from edge.store.lists import ListStore
from tests.conftest import run_cli
from tests.support.enrolled import EnrolledData
from tests.support.tiny_embedder import write_tiny_embedder
from tests.support.waiting import wait_for

ONNX = EmbedderSpec("onnx:00112233aabbccdd", 48)
PREFIX = "t"
PHOTOS = {"kit": "kit_harington/kit1.jpg", "biden": "joe_biden/biden1.jpg"}


def without_embedder(blob: bytes) -> bytes:
    """The same list data as a centre from before embedder ids wrote it."""
    (length,) = struct.unpack("<I", blob[4:8])
    meta = json.loads(blob[8 : 8 + length])
    del meta["embedder"]
    text = json.dumps(meta).encode()
    return MAGIC + struct.pack("<I", len(text)) + text + blob[8 + length :]


def test_bundles_record_their_embedder_and_older_ones_are_dlib() -> None:
    entries = [ListEntry(subject_id="a", embeddings=2), ListEntry(subject_id="b", embeddings=1)]
    matrix = np.random.default_rng(1).normal(size=(3, 48)).astype(np.float32)
    data = decode(encode(entries, matrix, embedder=ONNX), "full")
    assert data.embedder == ONNX and data.matrix.shape == (3, 48)
    with pytest.raises(ValueError, match="48-d"):
        encode(entries, np.zeros((3, 128), np.float32), embedder=ONNX)
    dlib_blob = encode(entries, np.zeros((3, 128), np.float32))
    legacy = decode(without_embedder(dlib_blob), "full")
    assert legacy.embedder == DLIB_EMBEDDER and legacy.matrix.shape == (3, 128)
    # 48-d rows presented as an older (hence 128-d) bundle do not decode.
    with pytest.raises(BundleError, match="rows of 128 floats"):
        decode(without_embedder(encode(entries, matrix, embedder=ONNX)), "full")
    plates = decode(encode([ListEntry(subject_id="p", plate="粤B12345")], np.empty((0, 0), np.float32)), "full")
    assert plates.embedder is None  # no faces: any box can take it


@pytest.fixture(scope="module")
def centre_bundles(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> dict[str, Path]:
    """missing_elders v1 built by a dlib centre, v2 by a centre configured with an ONNX model."""
    work = tmp_path_factory.mktemp("centre")
    photos = work / "photos"
    for subject, photo in PHOTOS.items():
        (photos / subject).mkdir(parents=True)
        (photos / subject / Path(photo).name).symlink_to(faces_dir / photo)
    model = write_tiny_embedder(work / "tiny.onnx", dim=48)
    onnx = CentreConfig.model_validate({"recognition": {"embedder": "onnx", "onnx": {"model": str(model)}}})
    out = {"dlib": work / "v1.gbl", "onnx": work / "v2.gbl", "model": model}
    assert build(CentreConfig(), "missing_elders", 1, photos, None, out["dlib"]) == 2
    assert build(onnx, "missing_elders", 2, photos, None, out["onnx"]) == 2
    return out


class Box:
    """A box's list sync, fed MQTT messages in-process."""

    def __init__(self, data_dir: Path, key_dir: Path, embedder_id: str) -> None:
        generate_keypair(key_dir / "centre.pem", key_dir / "centre.pub.pem")
        self.key = load_private_key(key_dir / "centre.pem")
        self.data_dir = data_dir
        self.applied: list[tuple[str, int]] = []
        lists = ["missing_elders", "plate_watchlist"]
        public = load_public_key(key_dir / "centre.pub.pem")
        self.sync = ListSync(PREFIX, public, data_dir, lists, self._on_applied, embedder_id=embedder_id)

    def _on_applied(self, name: str, version: int, entries: int) -> None:
        self.applied.append((name, version))

    def deliver(self, list_name: str, version: int, blob: bytes) -> None:
        chunks = split(blob, 4096)
        manifest = Manifest(list=list_name, kind="full", version=version, entries=len(decode(blob, "full").entries),
                            size=len(blob), chunks=[sha256(c) for c in chunks],
                            created_at=datetime.now(timezone.utc))  # fmt: skip
        for i, chunk in enumerate(chunks):
            self.sync.on_message(manifest.chunk_topic(PREFIX, i), chunk)
        seen = len(self.applied) + sum(self.sync.rejected.values())
        self.sync.on_message(f"{PREFIX}/lists/{list_name}/full/manifest",
                             seal(manifest.model_dump(mode="json", by_alias=True), self.key))  # fmt: skip
        wait_for(lambda: len(self.applied) + sum(self.sync.rejected.values()) > seen, 10, f"{list_name} v{version}")

    def store(self) -> ListStore:
        return ListStore(self.data_dir)


def test_a_box_refuses_a_list_of_another_embedder_and_keeps_the_list_in_force(
    tmp_path: Path, centre_bundles: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, _, dlib_v1 = read_bundle(centre_bundles["dlib"])
    _, _, onnx_v2 = read_bundle(centre_bundles["onnx"])
    assert decode(dlib_v1, "full").embedder == DLIB_EMBEDDER  # the centre embeds with its configured embedder
    onnx_spec = decode(onnx_v2, "full").embedder
    assert onnx_spec is not None and onnx_spec.id.startswith("onnx:") and onnx_spec.dim == 48

    box = Box(tmp_path / "dlib-box", tmp_path / "keys", DLIB_EMBEDDER.id)
    box.deliver("missing_elders", 1, dlib_v1)
    assert box.applied == [("missing_elders", 1)]
    before = box.store().gallery(["missing_elders"])
    with caplog.at_level(logging.ERROR, logger="edge.lists.sync"):
        box.deliver("missing_elders", 2, onnx_v2)
        # The apply thread counts the refusal, then logs it.
        wait_for(lambda: any(r.levelno == logging.ERROR for r in caplog.records), 10, "the refusal logged")
    assert box.sync.rejected == {"embedder_mismatch": 1} and box.applied == [("missing_elders", 1)]
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert onnx_spec.id in record.getMessage() and DLIB_EMBEDDER.id in record.getMessage()
    store = box.store()
    try:
        assert store.versions() == {"missing_elders": 1}
        after = store.gallery(["missing_elders"])
        assert after.subject_ids == before.subject_ids and np.array_equal(after.embeddings, before.embeddings)
    finally:
        store.close()

    # A box running the ONNX model takes v2, refuses dlib data (a list from before embedder ids
    # included) and takes a plate list, which holds no faces.
    onnx_box = Box(tmp_path / "onnx-box", tmp_path / "keys2", onnx_spec.id)
    onnx_box.deliver("missing_elders", 2, onnx_v2)
    onnx_box.deliver("missing_elders", 3, without_embedder(dlib_v1))
    onnx_box.deliver(
        "plate_watchlist", 1, encode([ListEntry(subject_id="p", plate="粤B12345")], np.empty((0, 0), np.float32))
    )
    assert onnx_box.applied == [("missing_elders", 2), ("plate_watchlist", 1)]
    assert onnx_box.sync.rejected == {"embedder_mismatch": 1}
    store = onnx_box.store()
    try:
        gallery = store.gallery(["missing_elders"], onnx_spec)
        assert gallery.embeddings.shape == (2, 48) and gallery.embedder == onnx_spec
    finally:
        store.close()


def test_the_centre_never_merges_two_embedders_into_one_list(centre_bundles: dict[str, Path]) -> None:
    _, _, dlib_v1 = read_bundle(centre_bundles["dlib"])
    _, _, onnx_v2 = read_bundle(centre_bundles["onnx"])
    with pytest.raises(InputError, match="embedded by dlib-resnet-v1, the new ones by onnx:"):
        merged_blob(dlib_v1, onnx_v2)
    with pytest.raises(InputError, match="publish the new version as a whole list"):
        delta_blob(dlib_v1, onnx_v2)
    assert decode(merged_blob(onnx_v2, onnx_v2), "full").embedder == decode(onnx_v2, "full").embedder


def test_the_store_never_mixes_embedders_in_a_list(tmp_path: Path) -> None:
    store = ListStore(tmp_path)
    store.enroll("watchlist", "local-1", None, np.ones((1, 128), np.float32), ["a.jpg"])
    with pytest.raises(EmbedderMismatch, match="holds faces 1 made by dlib-resnet-v1"):
        store.enroll("watchlist", "local-2", None, np.ones((1, 48), np.float32), ["b.jpg"], ONNX)
    with pytest.raises(ValueError, match=r"\(N, 48\)"):
        store.enroll("missing_elders", "x", None, np.ones((1, 128), np.float32), ["c.jpg"], ONNX)
    entry = ListEntry(subject_id="centre-1", embeddings=1)
    with pytest.raises(EmbedderMismatch):
        store.apply_update("watchlist", 1, None, [entry], np.ones((1, 48), np.float32), embedder=ONNX)
    assert store.versions() == {} and [s.subject_id for s in store.subjects()] == ["local-1"]
    store.apply_update("missing_elders", 1, None, [entry], np.ones((1, 48), np.float32), embedder=ONNX)
    assert store.embedders() == {"watchlist": {"dlib-resnet-v1": 1}, "missing_elders": {ONNX.id: 1}}
    assert store.gallery(["missing_elders"], ONNX).embeddings.shape == (1, 48)
    with pytest.raises(EmbedderMismatch, match=r"watchlist: 1 made by dlib-resnet-v1.*re-enrol"):
        store.gallery(None, ONNX)


def test_a_store_from_before_embedder_ids_is_dlib(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "lists.sqlite3")
    db.executescript(
        "CREATE TABLE subjects (list_name TEXT NOT NULL, subject_id TEXT NOT NULL, name TEXT, updated_at REAL NOT NULL,"
        " PRIMARY KEY (list_name, subject_id));"
        "CREATE TABLE face_embeddings (id INTEGER PRIMARY KEY, list_name TEXT NOT NULL, subject_id TEXT NOT NULL,"
        " embedding BLOB NOT NULL, source TEXT NOT NULL);"
    )
    db.execute("INSERT INTO subjects VALUES ('watchlist', 'old', NULL, 0)")
    db.execute("INSERT INTO face_embeddings (list_name, subject_id, embedding, source) VALUES (?, ?, ?, ?)",
               ("watchlist", "old", np.full(128, 0.1, "<f4").tobytes(), "old.jpg"))  # fmt: skip
    db.commit()
    db.close()
    store = ListStore(tmp_path)
    assert store.embedders() == {"watchlist": {DLIB_EMBEDDER.id: 1}}
    assert store.gallery().subject_ids == ("old",)
    with pytest.raises(EmbedderMismatch):
        store.gallery(None, ONNX)


@pytest.mark.slow  # the CLI
def test_a_box_refuses_to_start_on_faces_of_another_embedder(
    tmp_path: Path, centre_bundles: dict[str, Path], faces_dir: Path, enrolled_data: EnrolledData
) -> None:
    """Faces enrolled with dlib, then the config switched to an ONNX model: replay and enrolment refuse,
    naming both embedders and what to do, instead of matching across embedding spaces."""
    data = enrolled_data.copy(tmp_path / "box", {"kit": "watchlist"})
    photo = faces_dir / PHOTOS["kit"]
    config = tmp_path / "onnx.yaml"
    onnx = {"embedder": "onnx", "onnx": {"model": str(centre_bundles["model"])}}
    config.write_text(json.dumps({"recognition": onnx}))
    clip = faces_dir.parent / "video" / "parking_car_cyclist.gif"
    replay = run_cli("--config", config, "--data-dir", data, "replay", clip, "--no-publish")
    assert replay.returncode != 0
    assert "dlib-resnet-v1" in replay.stderr and "onnx:" in replay.stderr and "re-enrol" in replay.stderr
    again = run_cli("--config", config, "--data-dir", data, "enroll", "--list", "watchlist", "--subject", "kit2", photo)
    assert again.returncode != 0 and "one list never mixes embedders" in again.stderr
    lists = check_lists(load_config(config), data)  # `gatebox doctor` says so too
    assert lists.status == "FAIL" and "faces made by dlib-resnet-v1" in lists.detail and "re-enrol" in lists.fix
