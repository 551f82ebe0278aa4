"""Regression test on a real clip (slow tier): people counting on `one_by_one_from_behind.mp4` against the
truth counted by eye (benchmarks/truth/counting/). Tolerances come from the benchmark figures
(docs/benchmarks.md, "Counting"): with the shipped HOG defaults the benchmark counted none of the six
exits and no false crossing; so a change may count more of them, never count a crossing that is not there,
and never do worse than that."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.counting import MATCH_S, run_clip

CLIP = "one_by_one_from_behind.mp4"
BENCHMARK_ERROR = 6  # counting error measured by benchmarks/counting.py (docs/bench/counting.json)
MAX_FALSE_CROSSINGS = 0  # as measured


@pytest.mark.slow
def test_counting_on_the_real_clip_is_no_worse_than_the_benchmark(shared_data: Path) -> None:
    if not (shared_data / "video" / CLIP).is_file():
        pytest.skip(f"{CLIP} not in {shared_data / 'video'}")
    result = run_clip(CLIP, MATCH_S)
    assert result.true_out == 6 and result.true_in == 0  # the truth file is the one counted by eye
    assert result.false_crossings <= MAX_FALSE_CROSSINGS, result.counted
    assert result.counting_error <= BENCHMARK_ERROR
    assert result.cpu_ms_per_frame_on >= result.cpu_ms_per_frame_off  # counting on runs the body detector


def test_counted_passages_match_true_crossings_one_to_one_by_direction_and_time() -> None:
    from benchmarks.counting import Crossing, match

    truth = [Crossing(10.0, "out"), Crossing(11.0, "out"), Crossing(30.0, "in")]
    counted = [Crossing(10.5, "out"), Crossing(10.6, "out"), Crossing(10.7, "out"), Crossing(30.5, "out")]
    assert match(counted, truth, within_s=2.0) == 2  # two outs paired; the third and the wrong-way one are false
