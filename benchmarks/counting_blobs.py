"""Where the motion person finder's fractions come from (issue 18): over every people clip, the
areas of moving blobs that are walking people vs the other blobs, and the share of the frame that
changes at once.

A blob is a walking person's when its track (IoU, every frame) lasts at least 1 s and travels at least
10 % of the frame: what a person crossing a gate does, and speckle, leaves and reflections do not.
The blobs are the detector's own (same background model, work width and cleaning), before the area
threshold and the joining of body parts.

    .venv/bin/python benchmarks/counting_blobs.py [--clips NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.detectors.motion_people import HISTORY_FRAMES, WORK_WIDTH, cleaned  # noqa: E402
from edge.tracking.iou_tracker import IouTracker  # noqa: E402
from edge.types import Detections  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
CLIPS = [
    "one_by_one_from_behind.mp4",
    "campus_pedestrians.avi",
    "crowd_toward_camera.mp4",
    "corridor_pair_walking.gif",
    "parking_car_cyclist.gif",
]
WALKER_LIFE_S = 1.0
WALKER_TRAVEL = 0.1
THRESHOLDS = (0.0003, 0.0005, 0.001, 0.002, 0.003)


def blobs_of(clip: str) -> tuple[list[tuple[float, bool]], list[float]]:
    """(area as a fraction of the frame, a walker's?) per blob, and the foreground share per frame."""
    capture = cv2.VideoCapture(str(DATA / "video" / clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    background = cv2.createBackgroundSubtractorMOG2(history=HISTORY_FRAMES, varThreshold=16, detectShadows=True)
    tracker = IouTracker(0.2, 3, 3.0)
    tracks: defaultdict[int, list[tuple[int, float, float, float]]] = defaultdict(list)  # frame, area, x, y
    shares: list[float] = []
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        height = round(image.shape[0] * WORK_WIDTH / image.shape[1])
        small = cv2.resize(image, (WORK_WIDTH, height), interpolation=cv2.INTER_AREA)
        foreground = background.apply(small) == 255
        if index >= fps:  # the first second, the model has not learned the scene yet
            shares.append(float(foreground.mean()))
        mask = cleaned(foreground.astype(np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        rows = [(x, y, x + w, y + h, a / mask.size) for x, y, w, h, a in stats[1:count] if a / mask.size >= 0.0002]
        boxes = np.array([r[:4] for r in rows], np.float32).reshape(-1, 4)
        update = tracker.update(Detections.from_boxes(boxes, np.ones(len(boxes), np.float32)), index)
        for row, track in zip(rows, update.detections.tracker_id.tolist(), strict=True):
            tracks[track].append((index, row[4], (row[0] + row[2]) / 2 / WORK_WIDTH, row[3] / height))
        index += 1
    blobs = []
    for seen in tracks.values():
        life = (seen[-1][0] - seen[0][0] + 1) / fps
        xs, ys = [s[2] for s in seen], [s[3] for s in seen]
        walker = life >= WALKER_LIFE_S and max(max(xs) - min(xs), max(ys) - min(ys)) >= WALKER_TRAVEL
        blobs += [(s[1], walker) for s in seen]
    return blobs, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="*", default=CLIPS)
    args = parser.parse_args()
    walkers: list[float] = []
    others: list[float] = []
    for clip in args.clips:
        blobs, shares = blobs_of(clip)
        walkers += [a for a, w in blobs if w]
        others += [a for a, w in blobs if not w]
        p50, p99 = np.percentile(shares, [50, 99])
        print(f"{clip}: {sum(w for _, w in blobs)} walker blobs, {sum(not w for _, w in blobs)} others; frame share "
              f"changed: median {p50:.3f}, p99 {p99:.3f}, max {max(shares):.3f}")  # fmt: skip
    w = np.array(walkers)
    o = np.array(others)
    print(f"walker blob area (fraction of the frame): p5 {np.percentile(w, 5):.5f}, median {np.median(w):.5f}")
    for threshold in THRESHOLDS:
        print(f"  >= {threshold}: keeps {np.mean(w >= threshold):.1%} of walker blobs, "
              f"drops {np.mean(o < threshold):.1%} of the others")  # fmt: skip


if __name__ == "__main__":
    main()
