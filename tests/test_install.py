"""scripts/install (issue 8) into a throw-away root: the expected tree and unit, nothing changed on
a second run, nothing written by --dry-run, and a unit that systemd-analyze accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

INSTALL = REPO / "scripts" / "install"


def install(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(INSTALL), "--root", str(root), *extra], capture_output=True, text=True, timeout=900)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != "install.log"
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("root")
    first = install(root, "--profile", "raspberry-pi")
    assert first.returncode == 0, first.stdout + first.stderr
    return root, first.stdout


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = install(tmp_path / "root", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "root").exists()
    assert all(line.split()[0] in {"would", "skip", "install:"} for line in result.stdout.splitlines())


def test_install_builds_the_tree(installed: tuple[Path, str]) -> None:
    root, _ = installed
    for path in ["etc/gatebox/gatebox.yaml", "etc/systemd/system/gatebox.service", "opt/gatebox/edge/pipeline.py",
                 "opt/gatebox/.venv/bin/gatebox", "opt/gatebox/models/manifest.json",
                 "opt/gatebox/models/dlib/dlib_face_recognition_resnet_model_v1.dat"]:  # fmt: skip
        assert (root / path).is_file(), path
    assert (root / "var/lib/gatebox").is_dir()
    assert oct((root / "etc/gatebox").stat().st_mode)[-3:] == "750"
    assert "hw_decode: true" in (root / "etc/gatebox/gatebox.yaml").read_text()  # the chosen profile
    models = subprocess.run([str(root / "opt/gatebox/.venv/bin/gatebox"), "models"], capture_output=True, text=True)
    assert models.returncode == 0 and models.stdout.count("ok  ") == 9, models.stdout + models.stderr


def test_second_run_changes_nothing(installed: tuple[Path, str]) -> None:
    root, _ = installed
    before = snapshot(root)
    again = install(root, "--profile", "raspberry-pi")
    assert again.returncode == 0 and again.stdout.strip().endswith("install: nothing to change"), again.stdout
    assert snapshot(root) == before


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_passes_systemd_analyze_verify(installed: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = installed
    unit = (root / "etc/systemd/system/gatebox.service").read_text()
    # The binary lives under the test root: point ExecStart there so verify can check it.
    local = tmp_path / "gatebox.service"
    local.write_text(unit.replace("/opt/gatebox/.venv/bin/gatebox", str(root / "opt/gatebox/.venv/bin/gatebox")))
    result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True,
                            env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})  # fmt: skip
    assert result.returncode == 0 and "gatebox.service" not in result.stderr, result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_centre_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = (REPO / "systemd" / "gatebox-centre.service").read_text()
    local = tmp_path / "gatebox-centre.service"
    local.write_text(unit.replace("/opt/gatebox/.venv/bin/gatebox", str(REPO / ".venv" / "bin" / "gatebox")))
    result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True,
                            env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})  # fmt: skip
    assert result.returncode == 0 and "gatebox-centre.service" not in result.stderr, result.stderr
