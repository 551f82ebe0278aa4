"""Speed never buys misses: the gated pipeline (motion gate, detection every 3rd frame, best-frame
sampling, embedding in a worker process) raises the same alerts as the ungated one (no motion
gate, detection on every frame, embedding inline) on the shared clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config
from tests.support.enrolled import EnrolledData

UNGATED = {
    "motion": {"enabled": False},
    "detector": {"every_n_frames": 1},
    # Every face looked at ~10 times a second (on every 2nd-3rd frame) with no budget to share.
    "recognition": {
        "embedding_workers": 0,
        "min_looks_per_second": 10,
        "max_looks_per_second": 25,
        "embeddings_per_second": 1000,
        "max_embeddings_per_pass": 100,
    },
}
CLIPS = [  # clip, frames to replay, expected (list, subject) alerts
    ("crowd_toward_camera.mp4", None, [("missing_elders", "woman"), ("watchlist", "boy")]),
    ("campus_pedestrians.avi", 150, []),
    ("one_by_one_from_behind.mp4", 150, []),
]


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory, enrolled_data: EnrolledData) -> Path:
    return enrolled_data.copy(tmp_path_factory.mktemp("gating") / "box")


def alerts(tmp_path: Path, data_dir: Path, video: Path, end: int | None, config: dict) -> list[dict]:
    cfg = write_config(tmp_path / f"{len(config)}.yaml", **config)
    events = tmp_path / f"events{len(config)}.jsonl"
    args = ["--end-frame", str(end)] if end else []
    result = run_cli(
        "--config", cfg, "--data-dir", data_dir, "replay", video, "--no-publish", "--events", events, *args
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []


@pytest.mark.parametrize(("clip", "end", "expected"), CLIPS, ids=[c[0] for c in CLIPS])
def test_gated_pipeline_alerts_like_the_ungated_one(
    tmp_path: Path, shared_data: Path, enrolled: Path, clip: str, end: int | None, expected: list
) -> None:
    video = shared_data / "video" / clip
    gated = alerts(tmp_path, enrolled, video, end, {})
    ungated = alerts(tmp_path, enrolled, video, end, UNGATED)
    subjects = lambda events: sorted((e["list"], e["subject_id"]) for e in events)  # noqa: E731
    assert subjects(gated) == subjects(ungated) == expected
    for g in gated:  # the same person, seen within a second of the ungated pipeline's alert
        (u,) = [u for u in ungated if u["subject_id"] == g["subject_id"]]
        assert abs(g["frame"] - u["frame"]) <= 25
