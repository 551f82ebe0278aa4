"""A cut between a district broker and the centre loses nothing (issue 19, part 1): a real box (its
outbox and MQTT link) on a district broker, the centre's real recorder (`gatebox centre record`)
behind the centre's broker, the bridge between them over TLS. The link is cut (the centre's broker
stopped) while alerts are raised, and the district's broker is SIGKILLed during the cut too; once the
centre is back every alert is stored there exactly once and confirmed to the box, and a message the
box let go on the district's PUBACK (an alert state) arrives from the district's persistent queue."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge.box import Box
from edge.config import load_config
from edge.protocol.alert import Alert
from edge.protocol.messages import AlertState
from tests.conftest import start_cli, write_config
from tests.support.bridge import BridgeAuthority, CentreBroker, DistrictBroker, certificates
from tests.support.broker import find_mosquitto
from tests.support.mqtt import Collector
from tests.support.tls import Certificates
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

SITE, BOX_ID = "site-n1", "box1"
PASSWORDS = {"centre": "centre-pw", f"{SITE}/{BOX_ID}": "box1-pw"}  # the district's: its box, an observer
RESEND_AFTER_S = 2  # the box resends what the centre has not confirmed this often (link.resend_after_s)


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Certificates, BridgeAuthority]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; ./scripts/test installs it when run as root")
    return certificates(tmp_path / "tls")


def secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def alert(n: int) -> Alert:
    return Alert(
        event_id=f"cut-{n}", kind="face_match", list="watchlist", subject_id="s1", site=SITE, box_id=BOX_ID,
        camera="gate", ts=datetime.now(timezone.utc), frame=n, track_id=n, score=0.6, distance=0.4,
        matching_frames=3, bbox=(0, 0, 1, 1), snapshot_jpeg_b64="/9j/AA==",
    )  # fmt: skip


def stored(db: Path) -> tuple[Counter[str], dict[str, str]]:
    """Rows per event id, and each event's state, in the centre's database (read-only)."""
    if not db.exists():
        return Counter(), {}
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as reader:
        rows = reader.execute("SELECT event_id, state FROM events").fetchall()
    return Counter(e for e, _ in rows), dict(rows)


@pytest.fixture
def city(tmp_path: Path, tls: tuple[Certificates, BridgeAuthority]) -> Iterator[tuple[CentreBroker, DistrictBroker]]:
    server, bridges = tls
    centre = CentreBroker(tmp_path / "centre", server, bridges, {"centre": PASSWORDS["centre"]}, {"north": [SITE]})
    centre.start()
    north = DistrictBroker(tmp_path / "north", "north", [SITE], centre, server, bridges.issue("north"), PASSWORDS)
    north.start()
    yield centre, north
    north.stop()
    centre.stop()


def test_a_cut_between_district_and_centre_loses_nothing_and_stores_each_alert_once(
    tmp_path: Path, tls: tuple[Certificates, BridgeAuthority], city: tuple[CentreBroker, DistrictBroker]
) -> None:
    server, _ = tls
    centre, north = city
    tls_config = {"enabled": True, "ca_file": str(server.ca)}
    centre_config = write_config(
        tmp_path / "centre.yaml",
        broker={"host": "127.0.0.1", "port": centre.centre_port, "username": "centre", "keepalive_s": 5,
                "password_file": str(secret(tmp_path / "centre.pw", PASSWORDS["centre"])), "tls": tls_config,
                "reconnect_max_s": 1},
        console={"record_client_id": f"rec-{os.getpid()}"},
    )  # fmt: skip
    box_config = write_config(
        tmp_path / "box.yaml",
        box={"site": SITE, "box_id": BOX_ID},
        broker={"host": "127.0.0.1", "port": north.port, "username": f"{SITE}/{BOX_ID}", "keepalive_s": 5,
                "password_file": str(secret(tmp_path / "box.pw", PASSWORDS[f"{SITE}/{BOX_ID}"])), "tls": tls_config,
                "reconnect_max_s": 1},
        link={"resend_after_s": RESEND_AFTER_S},
    )  # fmt: skip
    db = tmp_path / "centre.sqlite3"
    recorder = start_cli("--config", centre_config, "centre", "record", "--db", db, "--timeout", "600",
                         log=tmp_path / "record.log")  # fmt: skip
    # At the district, what crosses it (the acl's `centre` user reads everything): each copy the box sends.
    at_district = Collector(north.port, f"gatebox/{SITE}/+/alert", username="centre", password=PASSWORDS["centre"],
                            ca=str(server.ca), client_id="centre")  # fmt: skip
    box = Box(load_config(box_config), tmp_path / "box", journal=tmp_path / "box" / "events.jsonl")
    copies: Counter[str] = Counter()

    def count_copies() -> Counter[str]:
        copies.update(Alert.model_validate_json(m.payload).event_id for m in at_district.received())
        return copies

    try:
        # Before the cut: the centre confirms through the bridge.
        for n in (1, 2, 3):
            box.alerts.emit(alert(n))
        assert box.delivery.wait_drained(60), "the alerts before the cut were never confirmed"

        # The cut: the centre's broker goes away (the recorder with it; both come back below).
        centre.stop()
        during = [f"cut-{n}" for n in range(4, 9)]
        for n in range(4, 9):
            box.alerts.emit(alert(n))
        # Let go on the district's PUBACK: only the district's queue for the bridge holds it now.
        box.delivery.send(AlertState(event_id="cut-1", state="closed", by="op1", ts=time.time()))
        wait_for(lambda: box.outbox.stats().depth == len(during), 20, "the district to acknowledge the alert state")
        # The box keeps every alert raised during the cut and sends it again and again: no receipt comes.
        wait_for(lambda: all(count_copies()[e] >= 2 for e in during), 30, "each alert sent twice during the cut")
        assert all(box.outbox.contains(e) for e in during)
        assert not any(r.confirmed for r in box.states.all() if r.event_id in during)

        # The district's broker dies mid-cut (SIGKILL, no goodbye) and restarts from its persistence.
        saved, acked_at = north.workdir / "mosquitto.db", time.time()  # autosave_interval 1: saved within 1 s
        wait_for(lambda: saved.exists() and saved.stat().st_mtime > acked_at + 0.1, 10, "the district's autosave")
        assert north.process is not None
        north.process.send_signal(signal.SIGKILL)
        north.process.wait(10)
        north.start()

        # The centre comes back: the bridge reconnects, both queues flow, the box's resends resume.
        centre.start()
        assert box.delivery.wait_drained(90), f"unconfirmed after the cut: {box.outbox.stats()}"
        every = [f"cut-{n}" for n in range(1, 9)]
        wait_for(lambda: stored(db)[1].get("cut-1") == "closed", 30, "the alert state sent during the cut")
        rows, _ = stored(db)
        assert sorted(rows) == every and set(rows.values()) == {1}, rows  # each alert stored exactly once
        assert all(r.confirmed for r in box.states.all())
        assert max(count_copies()[e] for e in during) >= 2  # so the centre did drop copies of the same alert
    finally:
        box.close()
        at_district.close()
        recorder.kill()
        recorder.wait(10)
    log = (tmp_path / "record.log").read_text()
    assert "Traceback" not in log, log
