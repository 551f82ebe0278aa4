"""Compose the demo clip: a person's head (from a public-domain photo) walks toward the camera
across OpenCV's sample street scene (vtest.avi). Both inputs come from package registries
(scikit-image's wheel, Debian's opencv-doc); nothing third-party is committed to the repo.

    python scripts/make_demo_clip.py PHOTO BACKGROUND.avi OUT.avi
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from edge.detectors.dlib_hog import DlibHogFaceDetector


def main(photo_path: str, background_path: str, out_path: str) -> None:
    photo = cv2.imread(photo_path)
    (x1, y1, x2, y2) = DlibHogFaceDetector(1600, 1).detect(photo).xyxy[0].astype(int)
    pad = (x2 - x1) // 2
    head = photo[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    # A soft elliptical mask so the pasted head blends into the scene instead of being a square.
    mask = np.zeros(head.shape[:2], np.float32)
    centre, axes = (head.shape[1] // 2, head.shape[0] // 2), (head.shape[1] // 2 - 2, head.shape[0] // 2 - 2)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (21, 21), 0)[..., None]

    background = cv2.VideoCapture(background_path)
    fps = background.get(cv2.CAP_PROP_FPS) or 10.0
    ok, frame = background.read()
    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    frames = 80
    for i in range(frames):
        t = i / (frames - 1)
        size = int(70 + 110 * t)  # walking toward the camera: the face grows from 70 to 180 px
        cx, cy = int(width * (0.30 + 0.25 * t)), int(height * (0.45 + 0.05 * np.sin(6 * t)))
        visible = 8 <= i < frames - 6  # the street is empty of our person at the start and the end
        if visible:
            scaled = cv2.resize(head, (size, size), interpolation=cv2.INTER_AREA)
            scaled_mask = cv2.resize(mask, (size, size))[..., None]
            top, left = cy - size // 2, cx - size // 2
            roi = frame[top : top + size, left : left + size].astype(np.float32)
            frame[top : top + size, left : left + size] = (scaled_mask * scaled + (1 - scaled_mask) * roi).astype(
                np.uint8
            )
        writer.write(frame)
        ok, frame = background.read()
        if not ok:
            break
    writer.release()
    print(f"demo clip: {out_path} ({frames} frames at {fps:.0f} fps, {width}x{height})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
