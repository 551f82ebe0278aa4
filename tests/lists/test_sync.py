"""Lists from the centre (issue 5, tests 1 and 2): a running box applies a published list without
restarting and alerts on its subject; a delta removing the subject stops those alerts; tampered,
wrongly signed, truncated and out-of-order bundles are refused and the list in force stays."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from centre.lists import delta_blob, read_bundle
from edge.protocol.bundle import Manifest, sha256, split
from edge.protocol.signing import generate_keypair, load_private_key, seal
from tests.conftest import run_cli, start_cli, write_config
from tests.support import crowd
from tests.support.broker import Mosquitto
from tests.support.mqtt import Collector


@dataclass
class Centre:
    key: Path
    bundles: dict[str, Path]
    port: int
    config: Path

    def publish(self, bundle: str, *extra: str) -> None:
        result = run_cli("--config", self.config, "centre", "lists", "publish", self.bundles[bundle], "--key",
                         self.key, *extra)  # fmt: skip
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory, crowd_clip: Path) -> dict[str, Path]:
    """missing_elders v1 = {boy}; v2 = {woman} (the boy found, the woman reported missing)."""
    work = tmp_path_factory.mktemp("lists")
    out = {}
    for version, subject in ((1, "boy"), (2, "woman")):
        photos = work / f"v{version}" / subject
        photos.mkdir(parents=True)
        crowd.write_face_crop(crowd_clip, subject, photos / "crop.png")
        out[f"v{version}"] = work / f"missing_v{version}.gbl"
        result = run_cli("centre", "lists", "build", "--list", "missing_elders", "--version", str(version),
                         "--photos", work / f"v{version}", "--out", out[f"v{version}"])  # fmt: skip
        assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def running_box(tmp_path: Path, broker: Mosquitto, crowd_clip: Path, bundles: dict[str, Path]) -> Iterator[tuple]:
    keys = tmp_path / "keys"
    assert run_cli("centre", "keygen", "--out", keys).returncode == 0
    box_id = f"lists-{tmp_path.name[-6:]}"
    prefix = f"t{tmp_path.name[-6:]}"  # a topic prefix of its own: retained lists of other tests stay apart
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "s1", "box_id": box_id},
        broker={"port": broker.port, "keepalive_s": 5, "topic_prefix": prefix},
        link={"centre_public_key": str(keys / "centre_ed25519.pub.pem"), "heartbeat_interval_s": 1,
              "list_timeout_s": 3},
        recognition={"subject_cooldown_s": 0},
        cameras=[{"name": "gate", "url": str(crowd_clip), "reconnect": {"initial_backoff_s": 0.2}}],
    )  # fmt: skip
    centre_cfg = write_config(tmp_path / "centre.yaml", broker={"port": broker.port, "topic_prefix": prefix})
    centre = Collector(broker.port, f"{prefix}/s1/{box_id}/#", receipts=True)
    box = start_cli("--config", config, "--data-dir", tmp_path / "box", "run", log=tmp_path / "run.log")
    yield (
        box,
        centre,
        Centre(keys / "centre_ed25519.pem", bundles, broker.port, centre_cfg),
        centre_cfg,
        prefix,
        tmp_path,
    )
    box.send_signal(signal.SIGTERM)
    box.wait(60)
    centre.close()


def collect(centre: Collector, seconds: float) -> list[tuple[str, dict]]:
    return [(m.topic.rsplit("/", 1)[-1], json.loads(m.payload)) for m in centre.drain(seconds)
            if not m.topic.endswith(("availability",))]  # fmt: skip


def wait_for_ack(
    centre: Collector, version: int, timeout: float = 60, list_name: str = "missing_elders"
) -> list[tuple[str, dict]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for leaf, body in collect(centre, 0.5):
            seen.append((leaf, body))
            if leaf == "list_ack" and (body["list"], body["version"]) == (list_name, version):
                return seen
    raise AssertionError(f"no list_ack for v{version}: {seen[-5:]}")


def alerted(messages: list[tuple[str, dict]]) -> set[tuple[str, str, str]]:
    return {(b["list"], b["subject_id"], b["list_version"]) for leaf, b in messages if leaf == "alert"}


def alerts_until(centre: Collector, wanted: tuple[str, str, str], timeout: float = 40) -> set[tuple[str, str, str]]:
    """Everything alerted until `wanted` shows up (the camera loops its clip; a busy machine is slow)."""
    seen: set[tuple[str, str, str]] = set()
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        seen |= alerted(collect(centre, 1))
    return seen


def test_published_list_is_applied_live_and_a_delta_removes_a_subject(running_box: tuple, shared_data: Path) -> None:
    box, centre, publisher, _, _, tmp_path = running_box
    assert alerted(collect(centre, 6)) == set()  # nobody is on any list yet
    publisher.publish("v1")
    wait_for_ack(centre, 1)
    assert alerts_until(centre, ("missing_elders", "boy", "v1")) == {("missing_elders", "boy", "v1")}

    publisher.publish("v2", "--delta-from", str(publisher.bundles["v1"]))
    wait_for_ack(centre, 2)
    # Once an alert on v2 arrived, the cameras match against v2 only; a boy alert decided just
    # before the swap may still have been on its way before it.
    assert ("missing_elders", "woman", "v2") in alerts_until(centre, ("missing_elders", "woman", "v2"))
    assert alerted(collect(centre, 12)) <= {("missing_elders", "woman", "v2")}
    assert box.poll() is None

    # A plate list (the plate reader matches against it) travels the same way.
    plates = tmp_path / "plates.gbl"
    built = run_cli("centre", "lists", "build", "--list", "plate_watchlist", "--version", "1", "--plates",
                    shared_data / "plates_cn" / "hyperlpr" / "ground_truth.csv", "--out", plates)  # fmt: skip
    assert built.returncode == 0, built.stderr
    publisher.bundles["plates"] = plates
    publisher.publish("plates")
    wait_for_ack(centre, 1, list_name="plate_watchlist")
    listed = run_cli("--data-dir", tmp_path / "box", "lists").stdout
    assert "missing_elders\twoman" in listed and "boy" not in listed
    assert "plate_watchlist\t津B6H920\t\tplate 津B6H920\tcentre v1" in listed


def _publish_raw(port: int, prefix: str, manifest: Manifest, payload: bytes, chunks: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for i, chunk in enumerate(chunks):
        client.publish(manifest.chunk_topic(prefix, i), chunk, qos=1, retain=True).wait_for_publish(10)
    client.publish(f"{prefix}/lists/{manifest.list}/{manifest.kind}/manifest", payload, qos=1,
                   retain=True).wait_for_publish(10)  # fmt: skip
    client.loop_stop()


def test_bad_bundles_are_refused_and_the_old_list_stays(running_box: tuple) -> None:
    box, centre, publisher, _, prefix, tmp_path = running_box
    publisher.publish("v1")
    wait_for_ack(centre, 1)
    key = load_private_key(publisher.key)
    generate_keypair(tmp_path / "intruder.pem", tmp_path / "intruder.pub.pem")
    _, _, v1 = read_bundle(publisher.bundles["v1"])
    _, _, v2 = read_bundle(publisher.bundles["v2"])

    def manifest(
        version: int, blob: bytes, kind: Literal["full", "delta"] = "full", base: int | None = None
    ) -> Manifest:
        return Manifest(list="missing_elders", kind=kind, version=version, base_version=base, entries=1,
                        size=len(blob), chunks=[sha256(c) for c in split(blob, 4096)],
                        created_at=datetime.now(timezone.utc))  # fmt: skip

    good = manifest(5, v2)
    sealed = json.loads(seal(good.model_dump(mode="json", by_alias=True), key))
    tampered = json.dumps({**sealed, "body": sealed["body"].replace('"version":5', '"version":6')}).encode()
    cases = [
        (good, tampered, split(v2, 4096)),  # body changed after signing
        (good, seal(good.model_dump(mode="json", by_alias=True), load_private_key(tmp_path / "intruder.pem")),
         split(v2, 4096)),  # signed by another key
        (manifest(7, v2), seal(manifest(7, v2).model_dump(mode="json", by_alias=True), key),
         split(v2, 4096)[:-1]),  # one chunk never arrives
    ]  # fmt: skip
    wrong_base = manifest(9, delta_blob(v1, v2), "delta", base=8)
    cases.append(
        (wrong_base, seal(wrong_base.model_dump(mode="json", by_alias=True), key), split(delta_blob(v1, v2), 4096))
    )
    # One after the other, no pause needed: each publish is acknowledged before the next begins, so the
    # broker hands them to the box in this order, and the box's link thread takes them one at a time.
    for m, payload, chunks in cases:
        _publish_raw(publisher.port, prefix, m, payload, chunks)

    deadline = time.monotonic() + 30
    beat = {}
    while time.monotonic() < deadline:
        beats = [b for leaf, b in collect(centre, 1) if leaf == "heartbeat"]
        if beats and beats[-1]["lists"].get("rejected", {}).get("truncated"):
            beat = beats[-1]
            break
    # The v5 chunks that only a refused manifest claimed are dropped after list_timeout_s.
    assert beat["lists"]["rejected"] == {"bad_signature": 2, "truncated": 1, "out_of_order": 1, "orphan_chunk": 1}
    assert beat["lists"]["missing_elders"]["version"] == 1
    # The old list is still in force.
    assert alerts_until(centre, ("missing_elders", "boy", "v1")) == {("missing_elders", "boy", "v1")}
    assert box.poll() is None
