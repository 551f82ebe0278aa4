"""`gatebox doctor` checks what `run` needs of each panic receiver and of the centre's key (issue 17),
in process: each check on its own, a fault beside its fix."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.config import GateboxConfig
from edge.doctor import Check, check_cameras, check_centre_key, check_panic_receivers
from tests.support.broker import free_port

TOKEN = "a-token-of-24-characters"


@pytest.fixture(autouse=True)
def mock_pins() -> Iterator[None]:
    Device.pin_factory = MockFactory()  # a board with GPIO 2-27
    yield
    Device.pin_factory.close()


def write_public_key(path: Path, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return path


def write_private_key(path: Path, key: ed25519.Ed25519PrivateKey) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    return path


def key_config(path: Path | None) -> GateboxConfig:
    return GateboxConfig.model_validate({"link": {"centre_public_key": str(path) if path else None}})


@pytest.mark.parametrize(
    ("make_key", "status", "words"),
    [
        (lambda tmp: write_public_key(tmp / "centre.pub.pem", ed25519.Ed25519PrivateKey.generate()), "OK",
         "centre.pub.pem"),
        (lambda tmp: None, "WARN", "and lists from the centre will be refused"),
        (lambda tmp: tmp / "missing.pem", "FAIL", "No such file"),
        (lambda tmp: write_public_key(tmp / "ec.pub.pem", ec.generate_private_key(ec.SECP256R1())), "FAIL",
         "is not an Ed25519 public key"),
        (lambda tmp: write_private_key(tmp / "centre.pem", ed25519.Ed25519PrivateKey.generate()), "FAIL",
         "cannot load the centre public key"),
    ],
    ids=["ed25519", "unset", "missing-file", "another-kind-of-key", "the-private-key"],
)  # fmt: skip
def test_the_centre_key_is_a_readable_ed25519_public_key(tmp_path: Path, make_key, status: str, words: str) -> None:
    check = check_centre_key(key_config(make_key(tmp_path)))
    assert (check.name, check.status) == ("centre key", status), check
    assert words in check.detail, check
    assert bool(check.fix) == (status != "OK")


def panic_config(tmp_path: Path, **receivers: object) -> GateboxConfig:
    (tmp_path / "token").write_text(TOKEN)
    return GateboxConfig.model_validate({"panic": {"devices": [{"device_id": "btn-1"}], **receivers}})


def only(checks: list[Check]) -> Check:
    assert len(checks) == 1, checks
    return checks[0]


def test_a_free_http_port_and_a_good_token_pass(tmp_path: Path) -> None:
    port = free_port()
    config = panic_config(tmp_path, http={"port": port, "token_file": str(tmp_path / "token")})
    check = only(check_panic_receivers(config))
    assert (check.name, check.status) == ("panic http", "OK") and f"127.0.0.1:{port} free" in check.detail


def test_a_taken_http_port_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = panic_config(tmp_path, http={"port": port, "token_file": str(tmp_path / "token")})
        check = only(check_panic_receivers(config))
    assert check.status == "WARN" and "is in use" in check.detail and f"sport = :{port}" in check.fix


def test_an_http_address_not_on_this_machine_fails(tmp_path: Path) -> None:
    http = {"host": "192.0.2.7", "port": free_port(), "token_file": str(tmp_path / "token")}
    config = panic_config(tmp_path, http=http)
    check = only(check_panic_receivers(config))
    assert check.status == "FAIL" and "cannot listen on 192.0.2.7" in check.detail
    assert "panic.http.host" in check.fix


@pytest.mark.parametrize(("pin", "status"), [(17, "OK"), (99, "FAIL")])
def test_a_gpio_pin_must_be_there(tmp_path: Path, pin: int, status: str) -> None:
    check = only(check_panic_receivers(panic_config(tmp_path, gpio=[{"device_id": "btn-1", "pin": pin}])))
    assert (check.name, check.status) == (f"panic gpio {pin}", status), check
    if status == "FAIL":
        assert "99" in check.detail and "panic.gpio[].pin" in check.fix


def test_a_serial_port_that_opens_passes(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        check = only(check_panic_receivers(panic_config(tmp_path, serial=[{"port": os.ttyname(slave)}])))
    finally:
        os.close(master)
        os.close(slave)
    assert check.status == "OK" and check.detail == "9600 baud"


def test_an_unreachable_bridge_broker_fails(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    check = only(check_panic_receivers(panic_config(tmp_path, mqtt={"port": port}), timeout=2))
    assert (check.name, check.status) == ("panic mqtt", "FAIL") and f"cannot reach 127.0.0.1:{port}" in check.detail
    assert "panic.mqtt.host/port" in check.fix


def test_receivers_without_devices_are_a_warning(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        config = GateboxConfig.model_validate({"panic": {"serial": [{"port": os.ttyname(slave)}]}})
        warning, serial = check_panic_receivers(config)
    finally:
        os.close(master)
        os.close(slave)
    assert warning.status == "WARN" and "no device registered" in warning.detail
    assert serial.status == "OK"  # each receiver is checked all the same


@pytest.mark.parametrize(
    ("sections", "status", "words"),
    [
        ({}, "FAIL", "no camera and no panic button"),
        ({"panic": {"devices": [{"device_id": "btn-1"}]}}, "OK", "relays panic buttons only (1 device(s))"),
    ],
    ids=["nothing", "panic-only"],
)
def test_a_box_without_cameras_passes_when_it_relays_panic_buttons(sections: dict, status: str, words: str) -> None:
    check = only(check_cameras(GateboxConfig.model_validate(sections)))
    assert (check.name, check.status) == ("cameras", status) and words in check.detail
