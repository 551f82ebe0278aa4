"""Fixtures the centre's tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.protocol.signing import generate_keypair


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The centre's signing key pair (private, public)."""
    folder = tmp_path_factory.mktemp("keys")
    generate_keypair(folder / "centre.pem", folder / "centre.pub.pem")
    return folder / "centre.pem", folder / "centre.pub.pem"
