from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from centre.config import load_config as load_centre_config
from edge.config import GateboxConfig, load_config, render_example_yaml
from edge.protocol.errors import ConfigError
from tests.support.models import nested_models

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", None),
        ("box: {site: north-gate, box_id: b7}\nbroker: {host: centre.example, port: 8883}\n", None),
        ("cameras:\n  - {name: a, url: usb:0}\n  - {name: b, url: /srv/clip.mp4}\n", None),
        ("cameras:\n  - {name: a, url: usb:0}\n  - {name: a, url: usb:1}\n", "camera names must be unique"),
        ("box: {site: 'has space'}\n", "box.site: String should match pattern"),
        ("broker: {port: 70000}\n", "broker.port: Input should be less than or equal to 65535"),
        ("detector: {kind: yolo}\n", "detector.kind: Input should be 'retinaface', 'dlib_hog' or 'dlib_cnn'"),
        ("recognition: {min_matching_frames: 0}\n", "recognition.min_matching_frames"),
        ("tracking: {iou: 0.3}\n", "tracking.iou: unknown field"),
        ("surprise: 1\n", "surprise: unknown field"),
    ],
)
def test_load_config(tmp_path: Path, text: str, error: str | None) -> None:
    path = tmp_path / "gatebox.yaml"
    path.write_text(text)
    if error is None:
        assert isinstance(load_config(path), GateboxConfig)
    else:
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert str(path) in str(caught.value) and error in str(caught.value)


@pytest.mark.parametrize("model", nested_models(GateboxConfig), ids=lambda m: m.__name__)
def test_every_field_is_described_and_unknown_fields_are_refused(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert all(f.description for f in model.model_fields.values()), model.__name__


def test_example_config_is_current_and_valid() -> None:
    example = REPO / "config" / "example.yaml"
    assert example.read_text() == render_example_yaml(), "regenerate: gatebox config-example > config/example.yaml"
    config = load_config(example)
    assert config.cameras[0].name == "main_gate"


@pytest.mark.parametrize(
    ("profile", "detect_width", "providers", "hw_decode"),
    [
        ("x86", 640, ["cpu"], False),
        ("raspberry-pi", 480, ["cpu"], True),
        ("jetson", 960, ["tensorrt", "cuda", "cpu"], True),
    ],
)
def test_hardware_profiles_are_valid(profile: str, detect_width: int, providers: list[str], hw_decode: bool) -> None:
    config = load_config(REPO / "config" / f"{profile}.yaml")
    assert config.detector.detect_width == detect_width and config.detector.providers == providers
    assert config.cameras[0].hw_decode is hw_decode and config.broker.tls.enabled and config.logging.as_json


def test_centre_config_is_valid() -> None:
    config = load_centre_config(REPO / "config" / "centre.yaml")
    assert config.console.secure_cookie and config.broker.username == "centre"
    assert config.broker.tls.enabled and config.console.signing_key is not None
