"""`link.centre_public_key` is the path of a PEM file: the key text pasted in its place is refused, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.config import load_config
from edge.protocol.errors import ConfigError

PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
    "-----END PUBLIC KEY-----\n"
)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("/etc/gatebox/centre_ed25519.pub.pem", None),
        (PEM, "link.centre_public_key: Value error, give the path of the PEM file"),
        ("-----BEGIN PUBLIC KEY----- MCowBQYDK2VwAyEA", "give the path of the PEM file"),
    ],
    ids=["path", "pasted-pem", "pasted-one-line"],
)
def test_centre_public_key_takes_a_path_not_the_key_text(tmp_path: Path, value: str, error: str | None) -> None:
    path = tmp_path / "gatebox.yaml"
    path.write_text(yaml.safe_dump({"link": {"centre_public_key": value}}))
    if error is None:
        assert load_config(path).link.centre_public_key == Path(value)
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert error in str(caught.value)
