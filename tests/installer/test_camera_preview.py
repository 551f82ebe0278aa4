"""`gatebox camera preview` (issue 17): a real clip's frame with the faces found, the detection window and
the gate line drawn, its OUT arrow on the configured outer side; the installer can try a line from the
command line and is told the YAML to keep it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import CameraConfig, GateboxConfig, GateLineConfig
from edge.preview import FACE_COLOUR, LINE_COLOUR, OUT_COLOUR, make_preview, parse_gate_line
from edge.protocol.errors import InputError
from tests.conftest import run_cli, write_config

LINE = GateLineConfig(start=(0.0, 0.75), end=(1.0, 0.6), outside=(0.5, 1.0))


def along(line: GateLineConfig, width: int, height: int, points: int = 200) -> list[tuple[int, int]]:
    """Pixels (x, y) evenly spaced from the line's start to its end."""
    xs = np.linspace(line.start[0], line.end[0], points) * width
    ys = np.linspace(line.start[1], line.end[1], points) * height
    return [(min(round(x), width - 1), min(round(y), height - 1)) for x, y in zip(xs, ys, strict=True)]


def side(line: GateLineConfig, x: float, y: float) -> float:
    """Which side of the line a point (in fractions) is: the sign of the cross product, as LineCrossing."""
    (x1, y1), (x2, y2) = line.start, line.end
    return (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)


def test_the_preview_shows_faces_and_the_gate_line_with_its_direction(crowd_clip: Path) -> None:
    camera = CameraConfig(name="gate", url=str(crowd_clip), gate_line=LINE)
    preview = make_preview(GateboxConfig(cameras=[camera]), camera.url, camera, LINE, frames=25)
    raw = cv2.VideoCapture(str(crowd_clip))
    for _ in range(25):
        ok, frame = raw.read()
        assert ok
    raw.release()
    image = preview.image
    height, width = image.shape[:2]
    assert (width, height) == (1920, 1080) and preview.frames_read == 25

    assert len(preview.faces) >= 3 and preview.small_faces == 0  # the crowd walking towards the camera
    for (x1, y1, x2, y2), _ in preview.faces:  # each face is boxed: its left edge is green where nothing covers it
        assert any(tuple(image[y, x1]) == FACE_COLOUR for y in range(y1, y2 + 1)), (x1, y1, x2, y2)
    assert preview.window is not None

    on_line = [tuple(image[y, x]) for x, y in along(LINE, width, height)]
    assert on_line.count(LINE_COLOUR) == len(on_line)  # the line, drawn last, is whole from end to end
    assert sum(tuple(frame[y, x]) == LINE_COLOUR for x, y in along(LINE, width, height)) < 5  # and not the clip's

    drawn_out = np.all(image == OUT_COLOUR, axis=2) & ~np.all(frame == OUT_COLOUR, axis=2)
    ys, xs = np.nonzero(drawn_out)
    assert len(xs) > 100  # the OUT arrow, its label and the outside point
    outside = np.sign(side(LINE, *LINE.outside))
    on_outer_side = np.sign([side(LINE, x / width, y / height) for x, y in zip(xs, ys, strict=True)]) == outside
    assert on_outer_side.mean() > 0.95  # OUT points to where the config says leaving is


@pytest.mark.parametrize(
    ("text", "error"),
    [("0,0.7,1,0.7,0.5,1", None), ("0,0.7,1,0.7", "give six fractions"), ("0,0.7,1,0.7,0.5,1.5", "0-1"),
     ("a,b,c,d,e,f", "give six fractions")],
)  # fmt: skip
def test_a_gate_line_to_try_is_six_fractions(text: str, error: str | None) -> None:
    if error is None:
        assert parse_gate_line(text) == GateLineConfig(start=(0, 0.7), end=(1, 0.7), outside=(0.5, 1))
        return
    with pytest.raises(InputError, match=error):
        parse_gate_line(text)


@pytest.mark.slow
def test_camera_preview_writes_a_png_and_the_line_to_keep(tmp_path: Path, crowd_clip: Path) -> None:
    config = write_config(tmp_path / "gatebox.yaml", cameras=[{"name": "north", "url": str(crowd_clip)}])
    out = tmp_path / "north.png"
    result = run_cli("--config", config, "camera", "preview", "--camera", "north", "--out", out,
                     "--gate-line", "0,0.75,1,0.6,0.5,1", timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and "faces: " in result.stdout
    assert "gate_line: {start: [0.0, 0.75], end: [1.0, 0.6], outside: [0.5, 1.0]}" in result.stdout
    image = cv2.imread(str(out))
    assert image.shape == (1080, 1920, 3) and tuple(image[round(0.675 * 1080), 960]) == LINE_COLOUR

    missing = run_cli("--config", config, "camera", "preview", str(tmp_path / "nothing.mp4"), timeout=60)
    assert missing.returncode == 2 and "gatebox: error: cannot open" in missing.stderr, missing.stderr
    assert "Traceback" not in missing.stderr
