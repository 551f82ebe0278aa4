"""What the integrator reads off the command line (issue 17): `gatebox alerts` and `gatebox lists` print
a header row naming their tab-separated columns, and `gatebox centre lists build` refuses a version
below 1 (a box takes only versions above the one it holds) with a clear error, before building
anything. In process: each program's `main`."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from centre.cli import main as centre_main
from edge.cli import main as box_main
from edge.protocol.embedding import DLIB_EMBEDDER
from edge.store.alert_states import AlertStates
from edge.store.lists import ListStore
from tests.conftest import write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "box.yaml", box={"site": "s1", "box_id": "b1"})


def test_gatebox_lists_prints_a_header_row(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with closing(ListStore(tmp_path / "box")) as store:
        store.enroll("missing_elders", "elder-0042", "Li Xiulan", np.zeros((2, DLIB_EMBEDDER.dim), np.float32),
                     ["a.jpg", "b.jpg"])  # fmt: skip
    assert box_main(["--config", str(config), "--data-dir", str(tmp_path / "box"), "lists"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split("\t") == ["list", "subject", "name", "holds", "origin"]
    assert row.split("\t") == ["missing_elders", "elder-0042", "Li Xiulan", "2 usable embedding(s)", "local"]


def test_gatebox_alerts_prints_a_header_row(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with closing(AlertStates(tmp_path / "box")) as states:
        states.record_event("e1", "face_match", "watchlist", "s-7", "gate", "2026-11-30T08:15:00+00:00")
    assert box_main(["--config", str(config), "--data-dir", str(tmp_path / "box"), "alerts"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split("\t") == ["event_id", "state", "list/subject", "camera", "ts", "note"]
    assert row.split("\t") == ["e1", "new", "watchlist/s-7", "gate", "2026-11-30T08:15:00+00:00", ""]


@pytest.mark.parametrize("command", ["lists", "alerts"])
def test_nothing_to_show_is_a_sentence_not_a_bare_header(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert box_main(["--config", str(config), "--data-dir", str(tmp_path / "box"), command]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("no ")


@pytest.mark.parametrize(("version", "status"), [("0", 2), ("-1", 2), (str(2**53 + 1), 2), ("1", 0), ("7", 0)])
def test_lists_build_refuses_a_version_below_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str, status: int
) -> None:
    plates = tmp_path / "plates.csv"
    plates.write_text("plate,subject_id,name\n粤B12345,car-1,Delivery van\n", encoding="utf-8")
    out = tmp_path / "plates.gbl"
    config = write_config(tmp_path / "centre.yaml")
    argv = ["--config", str(config), "lists", "build", "--list", "plate_watchlist", "--version", version,
            "--plates", str(plates), "--out", str(out)]  # fmt: skip
    assert centre_main(argv) == status
    err = capsys.readouterr().err
    if status:
        assert f"error: --version {version}: list versions are whole numbers from 1" in err, err
        assert not out.exists()
    else:
        assert out.exists() and err == ""
