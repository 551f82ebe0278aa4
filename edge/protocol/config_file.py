"""Both programs' YAML config files: read and validated the same way, so every error names the
file and the field; and a documented example rendered from a config model.

One file may configure both programs (one machine running a box and the centre: the demo, the
tests). Each program reads the sections it owns and the shared ones (`broker`, `lists`,
`recognition`, `models_dir`, `logging`), and leaves the other program's (`BOX_SECTIONS`,
`CENTRE_SECTIONS`, and the box's keys of `recognition`: `BOX_RECOGNITION_KEYS`) unread; any other
unknown key, and any unknown field inside a section, is an error. `tests/test_layout.py` checks
these sets against both config models.

PyYAML is not imported here (`edge.protocol` imports pydantic, numpy, cryptography and paho-mqtt
only): each program passes its `yaml.safe_load` and `yaml.safe_dump`.
"""

from __future__ import annotations

import textwrap
import typing
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from edge.protocol.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

# Top-level sections only the box reads (`edge.config.GateboxConfig`) ...
BOX_SECTIONS = frozenset({
    "box", "cameras", "link", "alerts", "integrations", "panic", "plates", "objects", "motion", "detector", "tracking",
    "data_dir", "passages",
})  # fmt: skip
# ... and only the centre (`centre.config.CentreConfig`; `centre` is its console section's former name).
CENTRE_SECTIONS = frozenset({"console", "centre"})
# The shared `recognition` section: the centre reads `embedder` and `onnx` (the embedder lists are
# built with); these, the box's matching policy, it leaves to the box.
BOX_RECOGNITION_KEYS = frozenset(
    {"match_distance", "strong_distance", "min_matching_frames", "evidence_window", "min_margin", "operating_points",
     "min_looks_per_second", "max_looks_per_second", "embeddings_per_second", "max_embeddings_per_pass",
     "min_quality_gain", "embedding_workers", "subject_cooldown_s", "min_face_px", "at_risk_hours"}
)  # fmt: skip


def format_validation_error(path: Path, err: ValidationError) -> str:
    """`invalid config FILE:` and one line per problem, naming its field (`box.site: ...`)."""
    lines = [f"invalid config {path}:"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {field}: {msg}")
    return "\n".join(lines)


def load_config_file(path: Path, model: type[M], parse_yaml: Callable[[str], object], leave: Collection[str] = ()) -> M:
    """The YAML file at `path` validated as `model`, without its sections named in `leave` (the
    other program's); ConfigError naming the file (and the field) when it cannot be."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {e.start}); is it the right file?") from None
    try:
        raw = parse_yaml(text)
    except Exception as e:  # the parser's own error type (yaml.YAMLError): the text is not YAML
        raise ConfigError(f"config {path} is not valid YAML: {e}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level, got {type(raw).__name__}")
    try:
        return model.model_validate({key: value for key, value in raw.items() if key not in leave})
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None


def render_example(model: type[BaseModel], header: Sequence[str], dump_yaml: Callable[..., str]) -> str:
    """A config file documenting every field of `model`: its description, then its default (or its
    first example, when it has no default), under `header` (comment lines)."""
    lines = list(header)
    _render(model, 0, lines, dump_yaml)
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any, dump_yaml: Callable[..., str]) -> str:
    if isinstance(value, Path):
        value = str(value)
    return dump_yaml(value, default_flow_style=True).strip().removesuffix("...").strip()


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class of `Model` or `Model | None` annotations (a mapping of models is shown as one value)."""
    if typing.get_origin(annotation) is dict:
        return None
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _shown_value(field: FieldInfo, where: str) -> Any:
    """What the example config shows for a scalar field: its default, or the first example of a required one."""
    if not field.is_required():
        return field.get_default(call_default_factory=True)
    if not field.examples:
        raise ValueError(f"{where} is required and has no `examples` for the example config to show")
    return field.examples[0]


def _render(model: type[BaseModel], indent: int, lines: list[str], dump_yaml: Callable[..., str]) -> None:
    pad = " " * indent
    for name, field in model.model_fields.items():
        lines.extend(textwrap.wrap(field.description or "", 100 - indent, initial_indent=pad + "# ",
                                   subsequent_indent=pad + "# "))  # fmt: skip
        nested = _model_in(field.annotation)
        args = typing.get_args(field.annotation)
        item = _model_in(args[0]) if typing.get_origin(field.annotation) is list and args else None
        nested = None if item else nested
        if nested and not field.is_required() and field.get_default() is None:
            # Optional sections stay commented out: uncommenting one turns the feature on.
            block = [f"{pad}{name}:"]
            _render(nested, indent + 2, block, dump_yaml)
            lines.append(f"{pad}# (optional; off unless uncommented)")
            lines.extend(f"{pad}# {line[len(pad) :]}" if line.startswith(pad) else line for line in block)
        elif nested:
            lines.append(f"{pad}{name}:")
            _render(nested, indent + 2, lines, dump_yaml)
        elif item:
            lines.append(f"{pad}{name}:")
            lines.append(f"{pad}  -")
            _render(item, indent + 4, lines, dump_yaml)
        else:
            value = _shown_value(field, f"{model.__name__}.{name}")
            shown = list(value) if isinstance(value, tuple) else value
            lines.append(f"{pad}{name}: {_yaml_scalar(shown, dump_yaml)}")
