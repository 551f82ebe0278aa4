"""Memory bounds of list sync on the box (issue 13, "Also"): chunks that come before any manifest
are dropped after `link.list_timeout_s` and held up to `link.max_list_mb` in all; a manifest
announcing 200,000 chunks or more than the configured list size is refused at once; manifests go
through the inbound size limit and a depth check; odd chunk topics are refused, not raised."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypedDict

import numpy as np
import pytest
from typing_extensions import Unpack

from edge.lists.sync import ListSync
from edge.protocol.bundle import CHUNK_BYTES, ListEntry, Manifest, encode, sha256, split
from edge.protocol.signing import generate_keypair, load_private_key, load_public_key, seal
from tests.support.waiting import wait_for

MiB = 1024 * 1024
PREFIX = "gatebox/lists"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Box:
    sync: ListSync
    clock: Clock
    key_path: Path
    applied: list[tuple[str, int, int]] = field(default_factory=list)

    def seal(self, body: dict) -> bytes:
        return seal(body, load_private_key(self.key_path))


class Limits(TypedDict, total=False):
    """ListSync's bounds a test sets (the others keep their defaults)."""

    max_list_bytes: int
    max_manifest_bytes: int


def make_box(tmp_path: Path, **limits: Unpack[Limits]) -> Box:
    if not (tmp_path / "centre.pem").exists():
        generate_keypair(tmp_path / "centre.pem", tmp_path / "centre.pub.pem")
    clock = Clock()
    applied: list[tuple[str, int, int]] = []
    sync = ListSync("gatebox", load_public_key(tmp_path / "centre.pub.pem"), tmp_path / "box",
                    ["watchlist", "plate_watchlist"], lambda *a: applied.append(a), timeout_s=60, clock=clock,
                    **limits)  # fmt: skip
    return Box(sync, clock, tmp_path / "centre.pem", applied)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    yield make_box(tmp_path, max_list_bytes=1 * MiB)


def manifest_body(list_name: str = "watchlist", version: int = 2, size: int = 0, chunks: list[str] | None = None,
                  **extra: object) -> dict:  # fmt: skip
    return {"schema": "gatebox.list/1", "list": list_name, "kind": "full", "version": version, "entries": 0,
            "size": size, "chunks": chunks if chunks is not None else [sha256(b"")],
            "created_at": datetime.now(timezone.utc).isoformat(), **extra}  # fmt: skip


def test_orphan_chunks_are_dropped_after_the_list_timeout(box: Box) -> None:
    for index in range(3):
        box.sync.on_message(f"{PREFIX}/watchlist/full/7/{index}", b"x" * 1000)
    assert box.sync.early_chunks == (3, 3000)
    box.clock.now += 59
    box.sync.tick()
    assert box.sync.early_chunks == (3, 3000)  # still within list_timeout_s: its manifest may be on the way
    box.clock.now += 2
    box.sync.tick()
    assert box.sync.early_chunks == (0, 0)
    assert dict(box.sync.rejected) == {"orphan_chunk": 3}


def test_chunks_waiting_for_their_manifest_are_capped_in_bytes(box: Box) -> None:
    for index in range(8):  # 2 MiB of chunks, no manifest; the cap is 1 MiB
        box.sync.on_message(f"{PREFIX}/watchlist/full/{100 + index}/0", b"x" * CHUNK_BYTES)
    assert box.sync.early_chunks == (4, 1 * MiB)
    assert dict(box.sync.rejected) == {"early_overflow": 4}
    box.sync.on_message(f"{PREFIX}/watchlist/full/100/0", b"y" * CHUNK_BYTES)  # sent again: replaces, not adds
    assert box.sync.early_chunks == (4, 1 * MiB)
    box.sync.on_message(f"{PREFIX}/other_list/full/1/0", b"x" * 10)  # not a list this box uses: not held
    assert box.sync.early_chunks == (4, 1 * MiB)


def test_chunks_before_their_manifest_still_make_a_bundle(box: Box) -> None:
    blob = encode([ListEntry(subject_id="car-1", plate="ABC1234")], np.zeros((0, 128), np.float32))
    chunks = split(blob, 64)
    manifest = Manifest(list="plate_watchlist", kind="full", version=3, entries=1, size=len(blob),
                        chunks=[sha256(c) for c in chunks], created_at=datetime.now(timezone.utc))  # fmt: skip
    for index, chunk in enumerate(chunks):
        box.sync.on_message(manifest.chunk_topic("gatebox", index), chunk)
    sealed = box.seal(manifest.model_dump(mode="json", by_alias=True))
    box.sync.on_message(f"{PREFIX}/plate_watchlist/full/manifest", sealed)
    wait_for(lambda: box.applied == [("plate_watchlist", 3, 1)], 10, "the list to be applied")
    assert box.sync.early_chunks == (0, 0) and dict(box.sync.rejected) == {}


def test_early_chunks_of_a_version_already_in_force_are_let_go(box: Box) -> None:
    test_chunks_before_their_manifest_still_make_a_bundle(box)
    box.sync.on_message(f"{PREFIX}/plate_watchlist/full/2/0", b"old")
    box.sync.on_message(f"{PREFIX}/plate_watchlist/full/manifest", box.seal(manifest_body("plate_watchlist", 2)))
    assert box.sync.early_chunks == (0, 0)


@pytest.mark.parametrize(("max_manifest_bytes", "reason"), [(65536, "oversized"), (64 * MiB, "invalid_manifest")])
def test_a_manifest_claiming_200000_chunks_is_refused_at_once(tmp_path: Path, max_manifest_bytes: int,
                                                              reason: str) -> None:  # fmt: skip
    box = make_box(tmp_path, max_manifest_bytes=max_manifest_bytes)
    body = manifest_body(size=200_000 * CHUNK_BYTES, chunks=[sha256(str(i).encode()) for i in range(200_000)])
    box.sync.on_message(f"{PREFIX}/watchlist/full/manifest", box.seal(body))
    assert dict(box.sync.rejected) == {reason: 1}  # not held until list_timeout_s, waiting for its chunks


def test_a_manifest_beyond_the_configured_list_size_is_refused_at_once(box: Box) -> None:
    body = manifest_body(version=7, size=2 * MiB, chunks=[sha256(str(i).encode()) for i in range(8)])
    box.sync.on_message(f"{PREFIX}/watchlist/full/7/0", b"x" * 100)  # its early chunk goes with it
    box.sync.on_message(f"{PREFIX}/watchlist/full/manifest", box.seal(body))
    assert dict(box.sync.rejected) == {"too_large": 1}
    assert box.sync.early_chunks == (0, 0)


@pytest.mark.parametrize(
    ("body", "why"),
    [(manifest_body(version=2**63), "version past 64 bits"), (manifest_body(size=10 * CHUNK_BYTES), "size > chunks"),
     (manifest_body(chunks=["not-a-hash"]), "chunk not a sha256"), (manifest_body(chunks=[]), "no chunks")],
)  # fmt: skip
def test_manifests_outside_the_protocols_bounds_are_invalid(box: Box, body: dict, why: str) -> None:
    box.sync.on_message(f"{PREFIX}/watchlist/full/manifest", box.seal(body))
    assert dict(box.sync.rejected) == {"invalid_manifest": 1}, why


def test_a_deeply_nested_manifest_is_refused_without_recursion_error(box: Box) -> None:
    box.sync.on_message(f"{PREFIX}/watchlist/full/manifest", b"[" * 30_000 + b"]" * 30_000)
    assert dict(box.sync.rejected) == {"too_deep": 1}


@pytest.mark.parametrize(
    "topic",
    ["watchlist/full/\u00b2/0", "watchlist/full/1/\u0663", "watchlist/full/" + "9" * 5000 + "/0",
     "watchlist/full/0/0", "watchlist/full/99999999999999999999/0", "watchlist/full/1/" + "9" * 30,
     "watchlist/half/1/0"],
    ids=["superscript", "arabic digit", "5000 digits", "version 0", "version past 64 bits", "index 30 digits",
         "kind"],
)  # fmt: skip
def test_odd_chunk_topics_are_refused_not_raised(box: Box, topic: str) -> None:
    box.sync.on_message(f"{PREFIX}/{topic}", b"x")
    assert dict(box.sync.rejected) == {"bad_topic": 1}
    assert box.sync.early_chunks == (0, 0)
