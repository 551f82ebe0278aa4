"""Elder rules (issue 5, tests 3 and 4): an at-risk elder alerts only when walking out across the
gate line (real footage: the boy walks toward the camera, so with the outside below the line he is
leaving, and with the outside above it he is coming in); a missing elder's sighting goes before a
watchlist alert in the outbox."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge.box import Box
from edge.comms.outbox import Priority
from edge.config import GateboxConfig
from tests.conftest import run_cli, write_config
from tests.support.alerts import sample_alert as alert
from tests.support.enrolled import EnrolledData


@pytest.fixture(scope="module")
def at_risk_boy(tmp_path_factory: pytest.TempPathFactory, enrolled_data: EnrolledData) -> Path:
    return enrolled_data.copy(tmp_path_factory.mktemp("at-risk") / "box", {"boy": "at_risk_elders"})


def _hours_excluding_now() -> str:
    later = time.localtime(time.time() + 6 * 3600)
    return f"{later.tm_hour:02d}:00-{later.tm_hour:02d}:59"


@pytest.mark.slow  # the CLI on a real clip
@pytest.mark.parametrize(
    ("outside", "hours", "expected"),
    [
        ((0.5, 1.0), None, ["elder_leaving"]),  # the outside is towards the camera: he walks out
        ((0.5, 0.0), None, []),  # the outside is behind him: he walks in
        ((0.5, 1.0), "now", ["elder_leaving"]),
        ((0.5, 1.0), "not now", []),  # leaving outside the configured hours
    ],
)
def test_at_risk_elder_alerts_only_when_leaving(
    tmp_path: Path, at_risk_boy: Path, crowd_clip: Path, outside: tuple, hours: str | None, expected: list[str]
) -> None:
    window = {"now": "00:00-23:59", "not now": _hours_excluding_now(), None: None}[hours]
    config = write_config(
        tmp_path / "box.yaml",
        cameras=[{"name": "gate", "url": str(crowd_clip),
                  "gate_line": {"start": [0.0, 0.70], "end": [1.0, 0.70], "outside": list(outside)}}],
        recognition={"at_risk_hours": window},
    )  # fmt: skip
    events = tmp_path / "events.jsonl"
    result = run_cli("--config", config, "--data-dir", at_risk_boy, "replay", crowd_clip, "--camera", "gate",
                     "--no-publish", "--events", events)  # fmt: skip
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
    assert [a["kind"] for a in alerts] == expected
    for a in alerts:
        assert (a["list"], a["subject_id"], a["camera"]) == ("at_risk_elders", "boy", "gate")


def test_missing_elder_goes_before_watchlist_in_the_outbox(tmp_path: Path) -> None:
    services = Box(GateboxConfig(), tmp_path, connect=False)
    try:
        services.alerts.emit(alert("w1", "watchlist"))
        services.alerts.emit(alert("m1", "missing_elders"))
        services.alerts.emit(alert("w2", "watchlist"))
        assert [d[0] for d in services.outbox.due(10)] == ["m1", "w1", "w2"]
        assert Priority.PANIC > Priority.URGENT_ALERT > Priority.ALERT > Priority.OTHER
    finally:
        services.close()
