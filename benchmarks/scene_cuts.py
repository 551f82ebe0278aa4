"""The scene-cut score on real footage: what `tracking.scene_cut_correlation` was set from.

For every clip in ../shared/data/video: the median grid-cell correlation (edge.motion.scene_cut)
of consecutive frames, and of frames 3 apart (a live camera that dropped two frames); then the
same score across 600 synthetic cuts (a random frame of one clip, then a random frame of another
resized to the first one's size).

    .venv/bin/python benchmarks/scene_cuts.py
"""

from __future__ import annotations

import itertools
import os
import random
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config import MotionConfig  # noqa: E402
from edge.motion.detector import small_gray  # noqa: E402
from edge.motion.scene_cut import cell_correlations  # noqa: E402

VIDEO = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data")) / "video"
WIDTH = MotionConfig().width


def frames(path: Path) -> list[np.ndarray]:
    capture, out = cv2.VideoCapture(str(path)), []
    while (read := capture.read())[0]:
        out.append(read[1])
    return out


def score(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(cell_correlations(small_gray(a, WIDTH), small_gray(b, WIDTH))))


def main() -> None:
    clips = {p.name: frames(p) for p in sorted(VIDEO.iterdir()) if p.suffix in (".mp4", ".avi", ".gif")}
    print(f"{'clip':<28} {'frames':>6} {'gap 1 min':>9} {'p1':>6} {'gap 3 min':>9} {'p1':>6}")
    for name, clip in clips.items():
        gaps = {gap: [score(clip[i], clip[i + gap]) for i in range(len(clip) - gap)] for gap in (1, 3)}
        print(f"{name:<28} {len(clip):>6} " + " ".join(f"{min(s):>9.3f} {np.percentile(s, 1):>6.3f}"
                                                      for s in gaps.values()))  # fmt: skip
    rng = random.Random(0)
    cuts = []
    for a, b in itertools.permutations(clips, 2):
        height, width = clips[a][0].shape[:2]
        for _ in range(20):
            after = cv2.resize(rng.choice(clips[b]), (width, height))
            cuts.append(score(rng.choice(clips[a]), after))
    print(f"synthetic cuts: {len(cuts)}, max {max(cuts):.3f}, p99 {np.percentile(cuts, 99):.3f}, "
          f"median {np.median(cuts):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
