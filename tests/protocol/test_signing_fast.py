"""The signing envelope (`edge.protocol.signing`), in process: what `seal` makes `open_sealed` gives
back exactly, and every envelope that is malformed, unsigned, forged or tampered with is refused as
BadSignature (never another exception: callers count that one). Keys load from PEM files; anything
else is a clear ConfigError."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol.errors import ConfigError
from edge.protocol.signing import (
    BadSignature,
    generate_keypair,
    load_private_key,
    load_public_key,
    open_sealed,
    seal,
)

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
BODY = {"command": "ack_alert", "event_id": "e-1", "state": "acked", "note": "gate 2 · ünïcode", "n": [1, 2.5, None]}


def sign(text: str, key: Ed25519PrivateKey = KEY) -> str:
    return base64.b64encode(key.sign(text.encode())).decode()


def test_open_gives_back_exactly_what_was_sealed() -> None:
    sealed = seal(BODY, KEY)
    assert open_sealed(sealed, KEY.public_key()) == BODY
    envelope = json.loads(sealed)
    assert set(envelope) == {"body", "sig"} and json.loads(envelope["body"]) == BODY


def test_the_signature_covers_the_exact_body_text() -> None:
    """No canonical JSON: a body with other spacing, signed as it is, verifies as it is."""
    text = json.dumps(BODY, indent=2)
    assert open_sealed(json.dumps({"body": text, "sig": sign(text)}).encode(), KEY.public_key()) == BODY


TEXT = json.dumps(BODY, separators=(",", ":"))
REFUSED: dict[str, bytes] = {
    "not JSON": b"{not json",
    "empty": b"",
    "not UTF-8": b"\xff\xfe",
    "a JSON list": b'["body", "sig"]',
    "a JSON string": b'"body"',
    "no sig": json.dumps({"body": TEXT}).encode(),
    "no body": json.dumps({"sig": sign(TEXT)}).encode(),
    "an extra field": json.dumps({"body": TEXT, "sig": sign(TEXT), "alg": "none"}).encode(),
    "body an object": json.dumps({"body": BODY, "sig": sign(TEXT)}).encode(),
    "sig not base64": json.dumps({"body": TEXT, "sig": "***"}).encode(),
    "sig a number": json.dumps({"body": TEXT, "sig": 12}).encode(),
    "sig empty": json.dumps({"body": TEXT, "sig": ""}).encode(),
    "sig truncated": json.dumps({"body": TEXT, "sig": sign(TEXT)[:40]}).encode(),
    "signed by another key": seal(BODY, OTHER),
    "body changed after signing": json.dumps({"body": TEXT.replace("acked", "closed"), "sig": sign(TEXT)}).encode(),
    "signature of another body": json.dumps({"body": TEXT, "sig": sign(TEXT + " ")}).encode(),
    "signed text that is not JSON": json.dumps({"body": "ack e-1", "sig": sign("ack e-1")}).encode(),
}


@pytest.mark.parametrize("payload", REFUSED.values(), ids=REFUSED.keys())
def test_every_bad_envelope_is_refused_as_bad_signature(payload: bytes) -> None:
    with pytest.raises(BadSignature):
        open_sealed(payload, KEY.public_key())


def test_keys_round_trip_through_pem_files_and_the_private_one_is_private(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "keys" / "centre.pem", tmp_path / "keys" / "centre.pub.pem")
    assert stat.S_IMODE((tmp_path / "keys" / "centre.pem").stat().st_mode) == 0o600
    private, public = (
        load_private_key(tmp_path / "keys" / "centre.pem"),
        load_public_key(tmp_path / "keys" / "centre.pub.pem"),
    )
    assert open_sealed(seal(BODY, private), public) == BODY
    with pytest.raises(BadSignature):
        open_sealed(seal(BODY, private), KEY.public_key())


def test_unloadable_keys_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "centre.pem", tmp_path / "centre.pub.pem")
    (tmp_path / "garbage.pem").write_text("not a key")
    ec = generate_private_key(SECP256R1())
    (tmp_path / "ec.pem").write_bytes(ec.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))  # fmt: skip
    (tmp_path / "ec.pub.pem").write_bytes(ec.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    cases = [
        (load_private_key, "missing.pem"), (load_private_key, "garbage.pem"), (load_private_key, "centre.pub.pem"),
        (load_private_key, "ec.pem"), (load_public_key, "missing.pem"), (load_public_key, "garbage.pem"),
        (load_public_key, "centre.pem"), (load_public_key, "ec.pub.pem"),
    ]  # fmt: skip
    for load, name in cases:
        with pytest.raises(ConfigError, match=name):
            load(tmp_path / name)
