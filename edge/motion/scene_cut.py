"""Scene cuts: a sudden whole-scene change (camera moved, PTZ preset, an edit in recorded footage).

A face box on one side of a cut has nothing to do with a face box at the same place on the other
side, so every track must end there. A cut changes the picture *everywhere* at once, while even
a large object passing close to the camera changes only part of it. So the frame (the motion
stage's ~160 px grey copy) is split into a grid of cells, each cell's content is correlated with
the same cell one frame before (normalised cross-correlation: blind to exposure and contrast
changes), and the frame is a cut when the *median* cell correlation collapses.

Measured on every clip of `../shared/data/video` (2,741 consecutive frame pairs;
`benchmarks/scene_cuts.py`): the median cell correlation of consecutive frames never fell below
0.857 (parking_lot_cars.mp4, a car filling a quarter of a top-down view; 0.964 or more elsewhere),
nor below 0.738 with two frames dropped between them (a live camera falling behind); across 600
synthetic cuts (a random frame of one clip followed by a random frame of another, resized) it
never rose above 0.333 (median 0.076). The default threshold, 0.5, sits between the two.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GRID = (4, 6)  # rows x columns of cells: 24 cells of ~26x22 px on a 160 px wide frame
FLAT_STD = 2.0  # grey levels: a cell flatter than this in both frames has no structure to correlate
FLAT_SHIFT = 12.0  # ...so it counts as changed only if its brightness jumped by more than this


def cell_correlations(previous: npt.NDArray[np.float32], current: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Normalised cross-correlation of each grid cell of two same-size grey frames, (rows*cols,)."""
    rows, cols = GRID
    height, width = (current.shape[0] // rows) * rows, (current.shape[1] // cols) * cols

    def as_cells(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        cropped = image[:height, :width].astype(np.float32)
        cells: npt.NDArray[np.float32] = (
            cropped.reshape(rows, height // rows, cols, width // cols).transpose(0, 2, 1, 3).reshape(rows * cols, -1)
        )
        return cells

    a, b = as_cells(previous), as_cells(current)
    mean_a, mean_b = a.mean(1, keepdims=True), b.mean(1, keepdims=True)
    std_a, std_b = a.std(1), b.std(1)
    correlation: npt.NDArray[np.float32] = ((a - mean_a) * (b - mean_b)).mean(1) / np.maximum(std_a * std_b, 1e-3)
    # Flat cells (sky, a wall, asphalt) carry no structure: judge them by their brightness, net of
    # the whole frame's shift (auto-exposure moves every cell at once and is not a cut).
    flat = (std_a < FLAT_STD) & (std_b < FLAT_STD)
    shift = np.abs((mean_b - mean_a)[:, 0] - float(np.median(b - a)))
    correlation[flat] = np.where(shift[flat] > FLAT_SHIFT, 0.0, 1.0)
    return correlation.astype(np.float32)


class SceneCutDetector:
    """Feed it every frame's small grey copy; `update` says whether the scene was cut since the last."""

    def __init__(self, max_correlation: float = 0.5) -> None:
        self._max_correlation = max_correlation
        self._previous: npt.NDArray[np.float32] | None = None
        self.last_correlation = 1.0  # median cell correlation of the last two frames (1: identical)

    def update(self, gray: npt.NDArray[np.float32]) -> bool:
        previous, self._previous = self._previous, gray
        if previous is None or previous.shape != gray.shape:
            # The first frame, or the stream changed resolution: nothing to compare with (a new
            # resolution is a new scene, but then there is no track on it worth keeping either).
            self.last_correlation = 1.0 if previous is None else 0.0
            return previous is not None
        self.last_correlation = float(np.median(cell_correlations(previous, gray)))
        return self.last_correlation < self._max_correlation
