"""Counting benchmark (issue 18, item 4): people crossing a gate line on the real clips, against truth
counted by eye (benchmarks/truth/counting/<clip>.csv, each with a note on how it was made).

Every frame of a clip goes through several pipelines side by side, in one process and one run:
counting off (faces only, as a box without `passages.people`) and counting on with each person
finder in `--methods`: the shipped choices `motion` (the default: moving blobs, every frame) and
`hog` (OpenCV's HOG people detector at 640 px, every 3rd frame where it moved), and the candidates
that were measured and not shipped (`benchmarks/counting_candidates.py`). Faces are counted in every
`on` pipeline too. Per clip and method: true vs counted in/out, counting error, false crossings (a
counted passage with no true crossing of its direction within `--match-s`), missed crossings, and
CPU per frame with counting off and on (this process's CPU time around each `process` call; the
face embedding workers, the same in all, are not in it).

    .venv/bin/python benchmarks/counting.py [--clips NAME ...] [--methods motion hog hog_x2 ...]
                                            [--out docs/bench/counting.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.counting_candidates import CANDIDATES  # noqa: E402
from edge.config import GateboxConfig, GateLineConfig  # noqa: E402
from edge.counting.people import PersonPassage  # noqa: E402
from edge.pipeline import CameraPipeline, Models  # noqa: E402
from edge.recognition.gallery import Gallery  # noqa: E402
from edge.sources.video import VideoFile  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
TRUTH = REPO / "benchmarks" / "truth" / "counting"
MATCH_S = 2.0  # a counted passage matches a true crossing of its direction this close in time

# The gate line of each clip (the same line the truth was counted against; see its truth file).
LINES = {
    # People walk in from the bottom, stand at the table, and leave to the right past the pillar.
    "one_by_one_from_behind.mp4": GateLineConfig(start=(0.75, 0.0), end=(0.75, 1.0), outside=(1.0, 0.5)),
    # Elevated view of a campus path: the lamp post's vertical; walking right is `out`.
    "campus_pedestrians.avi": GateLineConfig(start=(0.55, 0.0), end=(0.55, 1.0), outside=(1.0, 0.5)),
    # A pair walking down a corridor toward the camera; the frame's middle, walking right to left is `in`.
    "corridor_pair_walking.gif": GateLineConfig(start=(0.5, 0.0), end=(0.5, 1.0), outside=(1.0, 0.5)),
}
SHIPPED = ("motion", "hog")  # `passages.people.detector` choices with a body detector (`onnx` needs a model)


@dataclass(frozen=True)
class Crossing:
    ts: float  # seconds from the clip's first frame
    direction: str  # in / out


@dataclass
class ClipResult:
    clip: str
    method: str  # the person finder (`passages.people.detector`, or a candidate)
    frames: int
    fps: float
    true_in: int
    true_out: int
    counted_in: int
    counted_out: int
    counting_error: int  # |counted_in - true_in| + |counted_out - true_out|
    matched: int
    false_crossings: int
    missed: int
    cpu_ms_per_frame_off: float
    cpu_ms_per_frame_on: float
    cpu_ms_per_frame_on_p95: float
    counted: list[Crossing]
    truth: list[Crossing]
    window: tuple[int, int | None]  # frames [start, end) the truth covers


def load_truth(clip: str) -> tuple[list[Crossing], tuple[int, int | None]]:
    """Crossings (`time_s,direction` rows) and the frames the truth covers (a `# frames: a-b` line)."""
    path = TRUTH / (Path(clip).stem + ".csv")
    window: tuple[int, int | None] = (0, None)
    rows = []
    lines = path.read_text().splitlines()
    for line in lines:
        if line.startswith("# frames:"):
            start, end = line.split(":", 1)[1].strip().split("-")
            window = (int(start), int(end) if end else None)
    body = [line for line in lines if line and not line.startswith("#")]
    for row in csv.DictReader(body):
        rows.append(Crossing(float(row["time_s"]), row["direction"]))
    return rows, window


def match(counted: list[Crossing], truth: list[Crossing], within_s: float) -> int:
    """Counted passages paired one-to-one with true crossings of the same direction, nearest first."""
    pairs = sorted(
        (abs(c.ts - t.ts), i, j)
        for i, c in enumerate(counted)
        for j, t in enumerate(truth)
        if c.direction == t.direction and abs(c.ts - t.ts) <= within_s
    )
    used_c: set[int] = set()
    used_t: set[int] = set()
    for _, i, j in pairs:
        if i not in used_c and j not in used_t:
            used_c.add(i)
            used_t.add(j)
    return len(used_c)


def pipeline(method: str | None, line: GateLineConfig) -> CameraPipeline:
    """Counting off (`method` None), or on with `method`: a shipped detector or a candidate."""
    shipped = method if method in SHIPPED else "hog"
    people = {"enabled": method is not None, "detector": shipped}
    config = GateboxConfig.model_validate({"passages": {"people": people}})
    models = Models.load(config)
    if method is not None and method not in SHIPPED:
        models = replace(models, people=CANDIDATES[method]())
    return CameraPipeline(config, models, Gallery(embedder=models.embedder.spec), line)


def run_clip(clip: str, within_s: float, methods: tuple[str, ...] = SHIPPED) -> dict[str, ClipResult]:
    """Every frame of `clip` (the truth's window) through counting off and each method; a result per method."""
    truth, (start, end) = load_truth(clip)
    line = LINES[clip]
    video = VideoFile(DATA / "video" / clip, camera="gate", start_frame=start, end_frame=end)
    video.start_ts = start / video.fps  # passage times in seconds from the clip's first frame, as in the truth
    runs: list[tuple[str | None, CameraPipeline]] = [(None, pipeline(None, line))]
    runs += [(method, pipeline(method, line)) for method in methods]
    cpu: dict[str | None, list[float]] = {method: [] for method, _ in runs}
    passages: dict[str, list[PersonPassage]] = {method: [] for method in methods}
    frames = 0
    try:
        for frame in video.frames():
            # Rotate which pipeline goes first, so none always finds the caches warm.
            shift = frames % len(runs)
            for method, pipe in runs[shift:] + runs[:shift]:
                began = time.process_time()
                result = pipe.process(frame)
                cpu[method].append(time.process_time() - began)
                if method is not None:
                    passages[method] += [p for p in result.passages if isinstance(p, PersonPassage)]
            frames += 1
        for method, pipe in runs:
            ended = pipe.finish("gate").passages
            if method is not None:
                passages[method] += [p for p in ended if isinstance(p, PersonPassage)]
    finally:
        for _, pipe in runs:
            pipe.close()
    true_in = sum(c.direction == "in" for c in truth)
    true_out = len(truth) - true_in
    off_ms = 1000 * statistics.fmean(cpu[None])
    results = {}
    for method in methods:
        counted = sorted((Crossing(round(p.ts, 2), p.direction) for p in passages[method]), key=lambda c: c.ts)
        matched = match(counted, truth, within_s)
        counted_in = sum(c.direction == "in" for c in counted)
        counted_out = len(counted) - counted_in
        results[method] = ClipResult(
            clip, method, frames, video.fps, true_in, true_out, counted_in, counted_out,
            abs(counted_in - true_in) + abs(counted_out - true_out), matched, len(counted) - matched,
            len(truth) - matched, off_ms, 1000 * statistics.fmean(cpu[method]),
            1000 * float(np.percentile(cpu[method], 95)), counted, truth, (start, end),
        )  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="*", default=list(LINES))
    parser.add_argument("--methods", nargs="*", default=list(SHIPPED), choices=[*SHIPPED, *CANDIDATES])
    parser.add_argument("--match-s", type=float, default=MATCH_S)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "counting.json")
    args = parser.parse_args()
    results: list[ClipResult] = []
    for clip in args.clips:
        if not (DATA / "video" / clip).is_file():
            raise SystemExit(f"missing clip {DATA / 'video' / clip}")
        for result in run_clip(clip, args.match_s, tuple(args.methods)).values():
            results.append(result)
            print(f"{clip} [{result.method}]: true in/out {result.true_in}/{result.true_out}, counted "
                  f"{result.counted_in}/{result.counted_out}, error {result.counting_error}, false "
                  f"{result.false_crossings}, missed {result.missed}; CPU ms/frame off "
                  f"{result.cpu_ms_per_frame_off:.1f}, on {result.cpu_ms_per_frame_on:.1f} "
                  f"(p95 {result.cpu_ms_per_frame_on_p95:.1f})", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d"), "match_s": args.match_s, "results": [asdict(r) for r in results]}
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
