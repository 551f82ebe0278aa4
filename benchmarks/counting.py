"""Counting benchmark (issue 18, item 4): people crossing a gate line on the real clips, against truth
counted by eye (benchmarks/truth/counting/<clip>.csv, each with a note on how it was made).

Every frame of a clip goes through two pipelines side by side, in one process and one run: counting
off (faces only, as a box without `passages.people`) and counting on (the shipped defaults: HOG
people detector, every 3rd frame). Per clip: true vs counted in/out, counting error, false crossings
(a counted passage with no true crossing of its direction within `--match-s`), missed crossings, and
CPU per frame with counting off and on (this process's CPU time around each `process` call; the
face embedding workers, the same in both, are not in it).

    .venv/bin/python benchmarks/counting.py [--clips NAME ...] [--out docs/bench/counting.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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
}


@dataclass(frozen=True)
class Crossing:
    ts: float  # seconds from the clip's first frame
    direction: str  # in / out


@dataclass
class ClipResult:
    clip: str
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


def pipeline(counting: bool, line: GateLineConfig) -> CameraPipeline:
    config = GateboxConfig.model_validate({"passages": {"people": {"enabled": counting}}})
    models = Models.load(config)
    return CameraPipeline(config, models, Gallery(embedder=models.embedder.spec), line)


def run_clip(clip: str, within_s: float) -> ClipResult:
    truth, (start, end) = load_truth(clip)
    line = LINES[clip]
    video = VideoFile(DATA / "video" / clip, camera="gate", start_frame=start, end_frame=end)
    video.start_ts = start / video.fps  # passage times in seconds from the clip's first frame, as in the truth
    off, on = pipeline(False, line), pipeline(True, line)
    cpu_off: list[float] = []
    cpu_on: list[float] = []
    passages: list[PersonPassage] = []
    frames = 0
    try:
        for frame in video.frames():
            # Alternate which pipeline goes first, so neither always finds the caches warm.
            order = ((off, cpu_off), (on, cpu_on)) if frames % 2 else ((on, cpu_on), (off, cpu_off))
            for pipe, costs in order:
                began = time.process_time()
                result = pipe.process(frame)
                costs.append(time.process_time() - began)
                if pipe is on:
                    passages += [p for p in result.passages if isinstance(p, PersonPassage)]
            frames += 1
        passages += [p for p in on.finish("gate").passages if isinstance(p, PersonPassage)]
        off.finish("gate")
    finally:
        off.close()
        on.close()
    counted = [Crossing(round(p.ts, 2), p.direction) for p in passages]
    matched = match(counted, truth, within_s)
    true_in = sum(c.direction == "in" for c in truth)
    counted_in = sum(c.direction == "in" for c in counted)
    true_out, counted_out = len(truth) - true_in, len(counted) - counted_in
    return ClipResult(
        clip, frames, video.fps, true_in, true_out, counted_in, counted_out,
        abs(counted_in - true_in) + abs(counted_out - true_out), matched, len(counted) - matched,
        len(truth) - matched, 1000 * statistics.fmean(cpu_off), 1000 * statistics.fmean(cpu_on),
        1000 * float(np.percentile(cpu_on, 95)), counted, truth, (start, end),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="*", default=list(LINES))
    parser.add_argument("--match-s", type=float, default=MATCH_S)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "counting.json")
    args = parser.parse_args()
    results = []
    for clip in args.clips:
        if not (DATA / "video" / clip).is_file():
            raise SystemExit(f"missing clip {DATA / 'video' / clip}")
        result = run_clip(clip, args.match_s)
        results.append(result)
        print(f"{clip}: true in/out {result.true_in}/{result.true_out}, counted {result.counted_in}/"
              f"{result.counted_out}, error {result.counting_error}, false {result.false_crossings}, missed "
              f"{result.missed}; CPU ms/frame off {result.cpu_ms_per_frame_off:.1f}, on "
              f"{result.cpu_ms_per_frame_on:.1f} (p95 {result.cpu_ms_per_frame_on_p95:.1f})", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d"), "match_s": args.match_s, "clips": [asdict(r) for r in results]}
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
