"""Regression test on real clips (slow tier): people counting with the shipped default (`motion`) on
`one_by_one_from_behind.mp4` and the first 43.5 s of `campus_pedestrians.avi`, against the truth counted by
eye (benchmarks/truth/counting/). The limits are the benchmark's figures (docs/benchmarks.md,
"Counting", `benchmarks/counting.py`): a change may count better, never count a crossing that is not
there where none was counted, and never do worse than measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.counting import MATCH_S, run_clip

# clip -> (true in, true out, counting error, false crossings), as measured with `motion`
MEASURED = {
    "one_by_one_from_behind.mp4": (0, 6, 0, 0),
    "campus_pedestrians.avi": (9, 6, 6, 0),
}


@pytest.mark.slow
@pytest.mark.parametrize("clip", list(MEASURED))
def test_counting_on_real_clips_is_no_worse_than_the_benchmark(shared_data: Path, clip: str) -> None:
    if not (shared_data / "video" / clip).is_file():
        pytest.skip(f"{clip} not in {shared_data / 'video'}")
    true_in, true_out, error, false_crossings = MEASURED[clip]
    result = run_clip(clip, MATCH_S, ("motion",))["motion"]
    assert (result.true_in, result.true_out) == (true_in, true_out)  # the truth file is the one counted by eye
    assert result.false_crossings <= false_crossings, result.counted
    assert result.counting_error <= error, result.counted
    assert result.cpu_ms_per_frame_on >= result.cpu_ms_per_frame_off  # counting on runs the body finder


def test_counted_passages_match_true_crossings_one_to_one_by_direction_and_time() -> None:
    from benchmarks.counting import Crossing, match

    truth = [Crossing(10.0, "out"), Crossing(11.0, "out"), Crossing(30.0, "in")]
    counted = [Crossing(10.5, "out"), Crossing(10.6, "out"), Crossing(10.7, "out"), Crossing(30.5, "out")]
    assert match(counted, truth, within_s=2.0) == 2  # two outs paired; the third and the wrong-way one are false
