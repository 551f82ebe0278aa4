"""The example config shows a required field by its first example; one without any is a clear error
naming the field (it used to be a TypeError from indexing None)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import Field

from edge.config import StrictModel
from edge.protocol.config_file import _render


class _Shown(StrictModel):
    camera: str = Field(description="A required field.", examples=["gate"])
    fps: int = Field(25, description="A field with a default.")


class _Unshowable(StrictModel):
    camera: str = Field(description="A required field with no example.")


def test_required_field_shows_its_first_example_and_others_their_default() -> None:
    lines: list[str] = []
    _render(_Shown, 0, lines, yaml.safe_dump)
    assert lines == ["# A required field.", "camera: gate", "# A field with a default.", "fps: 25"]


def test_required_field_without_an_example_names_itself() -> None:
    with pytest.raises(ValueError, match=r"_Unshowable\.camera is required and has no `examples`"):
        _render(_Unshowable, 0, [], yaml.safe_dump)
