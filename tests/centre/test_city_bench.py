"""The city benchmark's harness (benchmarks/city_bench.py, issue 19 part 3): run small, in its
single-worker SQLite mode, it cuts a district's link and kills the worker, and still finds every
event stored once and confirmed; its figures are the ones it says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import city_bench
from tests.conftest import REPO
from tests.support.broker import find_mosquitto


def test_best_window_rate_counts_the_busiest_stretch() -> None:
    stored_at = [0.0, 0.1, 0.2, 10.0, 10.5, 11.0, 11.5, 12.0, 20.0]
    assert city_bench.best_window_rate(stored_at, 5.0) == 1.0  # 10.0 .. 12.0: five in 5 s
    assert city_bench.best_window_rate([], 5.0) == 0.0


def test_what_limits_names_the_busiest_process_and_a_saturated_machine() -> None:
    cpu = {
        "machine_busy_share": 0.95,
        "processes": {
            "centre mosquitto": {"mean_core_share": 0.2, "busiest_second_core_share": 0.4},
            "worker 0": {"mean_core_share": 0.85, "busiest_second_core_share": 1.0},
        },
    }
    verdict = city_bench.what_limits(cpu)
    assert verdict.startswith("worker 0: 85% of a core") and "100% in its busiest second" in verdict
    assert "95% busy" in verdict
    assert "busy" not in city_bench.what_limits({**cpu, "machine_busy_share": 0.5})


def test_several_workers_need_a_shared_postgresql_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["city_bench.py", "--workers", "2", "--db", "/tmp/centre.sqlite3"])
    with pytest.raises(SystemExit) as exited:
        city_bench.main()
    assert exited.value.code == 2 and "console.share_group" in capsys.readouterr().err


@pytest.mark.slow
def test_a_small_city_run_stores_every_event_once_through_a_cut_and_a_killed_worker(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; ./scripts/test installs it when run as root")
    out = tmp_path / "city.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/city_bench.py", "--boxes", "8", "--per-site", "2", "--events", "80", "--rate",
         "16", "--workers", "1", "--cut-s", "2", "--cut-at", "0.2", "--kill-worker", "--kill-at", "0.6",
         "--restart-s", "1", "--resend-after-s", "2", "--heartbeat-s", "2", "--idle-probes", "3", "--json", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=400, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    found = json.loads(out.read_text())
    stored = found["stored"]
    assert found["ok"] and found["problems"] == []
    assert stored["sent"] == 80 and stored["missing"] == 0 and stored["duplicated"] == 0
    assert stored["rows"] == stored["distinct"] == stored["sent"] + stored["probes"]
    assert stored["receipts_missing"] == 0
    assert found["cut"]["district"] == "district-a" and found["cut"]["for_s"] >= 2
    assert found["cut"]["bridge_back_after_restore_s"] is not None
    assert found["worker_kill"]["worker"] == 0 and found["worker_kill"]["listening_again_after_s"] > 0
    assert found["feed_ms"]["raised_to_page_idle"]["n"] == 3
    roles = found["cpu_during_load"]["processes"]
    assert {"centre mosquitto", "district-a mosquitto", "district-b mosquitto", "worker 0"} <= set(roles)
    assert found["limits_next"].split(":")[0] in roles
