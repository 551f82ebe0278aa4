"""`gatebox doctor` (issue 8): all green on a good setup; each fault reported with its fix and a
failing exit code."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.enrolled import EnrolledData
from tests.support.tls import make_certificates


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    work = tmp_path_factory.mktemp("doctor-broker")
    server = Mosquitto(work, secure=make_certificates(work / "tls"), passwords={"s1/doc": "right-password"}).start()
    yield server
    server.stop()


@pytest.fixture
def good(tmp_path: Path, secure_broker: Mosquitto, shared_data: Path, enrolled_data: EnrolledData) -> dict:
    (tmp_path / "pw").write_text("right-password\n")
    enrolled_data.copy(tmp_path / "box", {"kit": "watchlist"})
    return {
        "box": {"site": "s1", "box_id": "doc"},
        "broker": {"port": secure_broker.port, "username": "s1/doc", "password_file": str(tmp_path / "pw"),
                   "tls": {"enabled": True, "ca_file": str(secure_broker.workdir / "tls" / "ca.crt")}},
        "cameras": [{"name": "gate", "url": str(shared_data / "video" / "campus_pedestrians.avi")}],
        "data_dir": str(tmp_path / "box"),
    }  # fmt: skip


def doctor(tmp_path: Path, config: dict) -> tuple[int, str]:
    result = run_cli("--config", write_config(tmp_path / "box.yaml", **config), "doctor", timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout


def test_good_setup_is_all_green(tmp_path: Path, good: dict) -> None:
    code, out = doctor(tmp_path, good)
    assert code == 0, out
    assert "FAIL" not in out and "camera gate  768x576" in out and "connected to 127.0.0.1" in out
    assert "doctor: " in out and " 0 failure(s)" in out


def _missing_model(tmp_path: Path, config: dict) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models, ignore=shutil.ignore_patterns("*.py"))
    (models / "retinaface" / "retinaface_mnet025.onnx").unlink()
    config["models_dir"] = str(models)


def _short_panic_token(tmp_path: Path, config: dict) -> None:
    (tmp_path / "token").write_text("short-token\n")  # 11 characters: the receiver refuses to start
    config["panic"] = {"http": {"port": 18099, "token_file": str(tmp_path / "token")}}


def _not_a_key(tmp_path: Path, config: dict) -> None:
    (tmp_path / "centre.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    config["link"] = {"centre_public_key": str(tmp_path / "centre.pub.pem")}


@pytest.mark.parametrize(
    ("fault", "check", "fix"),
    [
        (_missing_model, "models", "reinstall them: .venv/bin/python models/install.py"),
        (lambda tmp, c: (tmp / "pw").write_text("wrong\n"), "broker",
         "check broker.username (SITE/BOX_ID) and the password in broker.password_file"),
        (lambda tmp, c: c.update(cameras=[{"name": "gate", "url": "rtsp://127.0.0.1:9/none", "open_timeout_s": 2,
                                           "read_timeout_s": 2}]), "camera gate",
         "check the camera is powered, the URL, user and password, and the network path"),
        (lambda tmp, c: c.update(link={"outbox_budget_mb": 10**9}), "disk",
         "free disk space, or lower link.outbox_budget_mb to what the disk can hold"),
        (lambda tmp, c: c.update(surprise=1), "config", "fix the fields named above"),
        # What `gatebox run` refuses at start must not pass the doctor:
        (lambda tmp, c: c.update(cameras=[]), "cameras", "add the gate camera under cameras:"),
        (_short_panic_token, "panic http", "write a random token of 16+ characters to that file"),
        (lambda tmp, c: c.update(panic={"serial": [{"port": str(tmp / "ttyUSB-unplugged")}]}),
         "panic serial", "plug in the radio receiver, or fix panic.serial[].port"),
        (_not_a_key, "centre key", "copy the centre's public key file again"),
    ],
    ids=["missing-model", "wrong-password", "unreachable-camera", "disk-budget", "bad-config", "no-camera",
         "short-panic-token", "unplugged-radio", "bad-centre-key"],
)  # fmt: skip
def test_each_fault_is_reported_with_its_fix(tmp_path: Path, good: dict, fault, check: str, fix: str) -> None:
    fault(tmp_path, good)
    code, out = doctor(tmp_path, good)
    assert code == 1, out
    failing = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1 and failing[0].split()[1 : 1 + len(check.split())] == check.split(), out
    assert f"fix: {fix}" in out
