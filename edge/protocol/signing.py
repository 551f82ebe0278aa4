"""Ed25519 signatures for what the centre sends the boxes (commands, lists).

A signed message is an envelope `{"body": "<JSON text>", "sig": "<base64 Ed25519 signature of body>"}`:
the signature covers the exact bytes of `body`, so no JSON canonicalisation is needed.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.protocol.errors import ConfigError


class BadSignature(ValueError):
    """The envelope is malformed, unsigned or signed by another key."""


def generate_keypair(private_path: Path, public_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"cannot load the centre signing key {path}: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"cannot load the centre public key {path}: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


def seal(body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    text = json.dumps(body, separators=(",", ":"), default=str)
    signature = base64.b64encode(key.sign(text.encode())).decode()
    return json.dumps({"body": text, "sig": signature}).encode()


def open_sealed(payload: bytes, key: Ed25519PublicKey) -> Any:
    """The verified body (parsed JSON); BadSignature when the envelope does not verify."""
    try:
        envelope = json.loads(payload)
        body, signature = envelope["body"], base64.b64decode(envelope["sig"], validate=True)
        if not isinstance(body, str) or set(envelope) != {"body", "sig"}:
            raise BadSignature("the envelope must be exactly {body: <JSON text>, sig: <base64>}")
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise BadSignature(f"not a signed envelope: {e}") from None
    try:
        key.verify(signature, body.encode())
    except InvalidSignature:
        raise BadSignature("signature does not verify against the centre's public key") from None
    try:
        return json.loads(body)
    except ValueError as e:
        raise BadSignature(f"signed body is not JSON: {e}") from None
