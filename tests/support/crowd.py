"""Ground truth for `crowd_toward_camera.mp4` (1920x1080, 105 frames, 25 fps), read by eye from
the clip with the face boxes drawn on: where two people's faces are, frame by frame.

- `boy`: the boy in the blue hoodie, visible from frame 0 to the end.
- `woman`: the white-haired woman in the red-trimmed coat on the left, frames 0-87 (looking
  down and partly hidden by a passer-by until frame ~20).

Positions are face-box centres and widths in source pixels at every 5th frame.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.detectors.dlib_hog import DlibHogFaceDetector

TRACKS: dict[str, dict[int, tuple[int, int, int]]] = {
    "boy": {
        0: (934, 676, 80), 10: (959, 692, 80), 15: (994, 710, 80), 20: (1020, 700, 78),
        25: (1012, 745, 80), 30: (1012, 736, 80), 35: (1028, 752, 80), 40: (1046, 770, 80),
        45: (1028, 748, 96), 50: (986, 769, 94), 55: (955, 727, 94), 60: (944, 737, 94),
        65: (944, 727, 94), 70: (910, 712, 112), 75: (873, 724, 114), 80: (836, 712, 114),
        85: (823, 748, 112), 90: (810, 712, 114), 100: (785, 736, 112),
    },
    "woman": {
        0: (315, 640, 62), 3: (313, 663, 63),
        20: (311, 727, 56), 25: (303, 720, 66), 30: (288, 714, 66), 35: (274, 736, 68),
        40: (267, 720, 66), 45: (260, 735, 66), 50: (242, 727, 80), 55: (233, 710, 80),
        60: (233, 727, 80), 65: (233, 710, 80), 70: (233, 727, 80), 75: (217, 718, 80),
        80: (225, 710, 78), 85: (242, 736, 80),
    },
}  # fmt: skip

# The frame each subject is enrolled from (a crop of that frame), and the list it goes on.
ENROL_FRAME = 30
ENROL_LISTS = {"boy": "watchlist", "woman": "missing_elders"}


def position(subject: str, frame: int) -> tuple[float, float, float]:
    """Interpolated face centre x, y and width of `subject` at `frame`."""
    keys = sorted(TRACKS[subject])
    values = np.array([TRACKS[subject][k] for k in keys], float)
    x, y, width = (float(np.interp(frame, keys, values[:, i])) for i in range(3))
    return x, y, width


def read_frame(video: Path, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    assert ok, f"cannot read frame {index} of {video}"
    return image


def write_face_crop(video: Path, subject: str, out: Path, frame: int = ENROL_FRAME) -> Path:
    """Crop `subject`'s face (padded by half its width) out of `frame`, as an enrolment photo."""
    image = read_frame(video, frame)
    faces = DlibHogFaceDetector(detect_width=1280, upsample=1).detect(image)
    cx, cy, _ = position(subject, frame)
    centres = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
    x1, y1, x2, y2 = faces.xyxy[np.argmin(((centres - (cx, cy)) ** 2).sum(1))].astype(int)
    pad = (x2 - x1) // 2
    cv2.imwrite(str(out), image[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad])
    return out
