"""List behaviour comes from each list's `kind` in the config, not from its name (issue 15, item 2): a plain
list of names keeps the built-in kinds of the shipped names, a renamed list keeps its rule when given its
kind, and an unknown kind is an error naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config import GateboxConfig, RecognitionConfig, load_config
from edge.decision import AlertDecider
from edge.protocol.errors import ConfigError
from edge.types import FaceObservation, FaceSample, GateCrossing, Match

CROP = np.zeros((4, 4, 3), np.uint8)


def test_plain_names_keep_the_kinds_the_shipped_lists_had() -> None:
    config = GateboxConfig.model_validate({"lists": ["watchlist", "missing_elders", "at_risk_elders",
                                                     "plate_watchlist", "staff"]})  # fmt: skip
    assert config.lists == {"watchlist": "alert", "missing_elders": "urgent", "at_risk_elders": "leaving-only",
                            "plate_watchlist": "plates", "staff": "alert"}  # fmt: skip
    assert GateboxConfig().lists == {name: kind for name, kind in config.lists.items() if name != "staff"}


def test_a_renamed_list_keeps_its_rule_from_its_kind(tmp_path: Path) -> None:
    path = tmp_path / "box.yaml"
    path.write_text("lists: {suspects: alert, lost_residents: urgent, wanderers: leaving-only, cars: plates}\n")
    config = load_config(path)
    assert config.lists_of_kind("leaving-only") == ["wanderers"]
    assert config.lists_of_kind("urgent", "leaving-only") == ["lost_residents", "wanderers"]
    assert "at_risk_elders" not in config.lists


def test_an_unknown_kind_is_an_error_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "box.yaml"
    path.write_text("lists: {watchlist: alert, wanderers: leaving}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    text = str(error.value)
    assert "lists.wanderers" in text and "'leaving-only'" in text, text


def observation(frame: int, list_name: str) -> FaceObservation:
    sample = FaceSample("gate", frame, 1000.0 + frame, 1, (0, 0, 10, 10), CROP, (0, 0, 4, 4), 1.0)
    return FaceObservation(sample, Match(list_name, "elder", 0.30))


@pytest.mark.parametrize(("lists", "list_name"), [({"at_risk_elders": "leaving-only"}, "at_risk_elders"),
                                                  ({"wanderers": "leaving-only"}, "wanderers")])  # fmt: skip
def test_a_leaving_only_list_alerts_on_leaving_whatever_its_name(lists: dict[str, str], list_name: str) -> None:
    config = GateboxConfig.model_validate({"lists": lists})
    decider = AlertDecider(RecognitionConfig(), leaving_only=config.lists_of_kind("leaving-only"))
    assert decider.update([observation(0, list_name)]) == []  # identified, but not leaving
    (alert,) = decider.crossings({1: GateCrossing("out", observation(5, list_name).sample)})
    assert (alert.kind, alert.match.list_name) == ("elder_leaving", list_name)


def test_a_list_of_another_kind_named_like_the_old_at_risk_list_alerts_at_once() -> None:
    config = GateboxConfig.model_validate({"lists": {"at_risk_elders": "alert"}})
    decider = AlertDecider(RecognitionConfig(), leaving_only=config.lists_of_kind("leaving-only"))
    (alert,) = decider.update([observation(0, "at_risk_elders")])
    assert alert.kind == "face_match"
