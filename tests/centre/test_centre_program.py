"""The centre is a program of its own (`python -m centre`, `gatebox-centre`) with its own config
(`centre.config`); `gatebox centre ...` hands over to it with the same arguments and exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from centre.config import CentreConfig, load_config, render_example_yaml
from edge.config import load_config as load_box_config
from edge.protocol.errors import ConfigError
from tests.conftest import REPO, run_cli, write_config
from tests.support.models import nested_models

ONE_MACHINE = {  # what scripts/demo writes: one file for the box and the centre beside it
    "box": {"site": "demo-site", "box_id": "gate-01"},
    "broker": {"host": "127.0.0.1", "port": 18830},
    "link": {"resend_after_s": 2},
    "centre": {"db": "/tmp/demo/centre.sqlite3", "port": 18080},
    "recognition": {"min_matching_frames": 1, "embedder": "dlib"},  # the box's threshold, the centre's embedder
    "lists": {"watchlist": "alert", "lost_residents": "urgent", "plate_watchlist": "plates"},  # both read the kinds
}


def run_centre(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "centre", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, check=False)  # fmt: skip


def test_a_shared_file_gives_each_program_its_own_sections(tmp_path: Path) -> None:
    path = write_config(tmp_path / "gatebox.yaml", **ONE_MACHINE)
    centre, box = load_config(path), load_box_config(path)
    assert centre.console.db == Path("/tmp/demo/centre.sqlite3") and centre.console.port == 18080
    assert centre.broker.port == box.broker.port == 18830
    assert box.box.site == "demo-site" and box.link.resend_after_s == 2
    assert box.recognition.min_matching_frames == 1 and centre.recognition.embedder == "dlib"
    assert centre.lists == box.lists == {"watchlist": "alert", "lost_residents": "urgent", "plate_watchlist": "plates"}
    assert not hasattr(box, "centre") and not hasattr(box, "console")


@pytest.mark.parametrize(
    ("sections", "error"),
    [
        ({"console": {"port": 70000}}, "console.port: Input should be less than or equal to 65535"),
        ({"console": {"colour": "red"}}, "console.colour: unknown field"),
        ({"centre": {"colour": "red"}}, "console.colour: unknown field"),  # the section's former name
        ({"centre": {"port": 1}, "console": {"port": 2}}, "`centre:` is the old name of `console:`"),
        ({"surprise": 1}, "surprise: unknown field"),
        ({"recognition": {"embedder": "onnx"}}, "embedder: onnx needs an `onnx:` section"),
        ({"recognition": {"embeder": "onnx"}}, "recognition.embeder: unknown field"),
    ],
)
def test_a_bad_centre_config_names_the_file_and_the_field(tmp_path: Path, sections: dict, error: str) -> None:
    path = write_config(tmp_path / "centre.yaml", **sections)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and error in str(caught.value), caught.value


@pytest.mark.parametrize("model", nested_models(CentreConfig), ids=lambda m: m.__name__)
def test_every_centre_field_is_described_and_unknown_fields_are_refused(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert all(f.description for f in model.model_fields.values()), model.__name__


def test_the_centre_example_config_is_current_and_valid() -> None:
    example = REPO / "config" / "centre-example.yaml"
    assert example.read_text() == render_example_yaml(), (
        "regenerate: python -m centre config-example > config/centre-example.yaml"
    )
    assert load_config(example) == CentreConfig()


def test_the_shipped_centre_config_carries_no_box_defaults() -> None:
    """`config/centre.yaml` is the centre's alone: no cameras, no outbox, nothing of a box."""
    config = load_config(REPO / "config" / "centre.yaml")
    assert not set(type(config).model_fields) & {"cameras", "box", "link", "panic", "data_dir"}
    assert config.console.secure_cookie and config.console.signing_key is not None


@pytest.mark.slow  # launches the programs
def test_gatebox_centre_hands_over_with_the_same_arguments_and_exit_status(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gatebox.yaml", **ONE_MACHINE)
    keys = tmp_path / "keys"
    made = run_cli("--config", config, "--data-dir", tmp_path / "box", "-v", "centre", "keygen", "--out", keys)
    assert made.returncode == 0, made.stderr
    assert (keys / "centre_ed25519.pem").exists() and "link.centre_public_key" in made.stdout
    again = run_cli("--config", config, "centre", "keygen", "--out", keys)
    assert again.returncode == 2 and again.stderr.startswith("gatebox: error:") and "--force" in again.stderr
    usage = run_cli("centre", "--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: gatebox centre"), usage.stderr
    unknown = run_cli("centre", "no-such-command")
    assert unknown.returncode == 2 and "gatebox centre: error: argument COMMAND" in unknown.stderr


@pytest.mark.slow  # launches the programs
def test_the_centre_runs_as_its_own_program(tmp_path: Path) -> None:
    config = write_config(tmp_path / "centre.yaml", console={"db": str(tmp_path / "centre.sqlite3")})
    listed = run_centre("--config", config, "operator", "list")
    assert listed.returncode == 0 and listed.stdout.strip() == "no operators", listed.stderr
    bad = run_centre("--config", tmp_path / "missing.yaml", "operator", "list")
    assert bad.returncode == 2 and bad.stderr.startswith("gatebox-centre: error: cannot read config")
    assert run_centre("config-example").stdout == render_example_yaml()
