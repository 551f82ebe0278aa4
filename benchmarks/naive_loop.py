"""The peer baseline: face_recognition's `facerec_from_video_file` example, unchanged in substance.

Every frame: HOG face locate on the full frame, encode every face, compare with the known faces
(tolerance 0.50, as the example), and report every matching face of every frame. Prints one JSON
object (frames, loop seconds, per-frame cost, alerts) for the harness.

    python benchmarks/naive_loop.py VIDEO NAME=PHOTO [NAME=PHOTO ...]
"""

from __future__ import annotations

import json
import sys
import time

import cv2
import face_recognition


def main(video: str, known: list[str]) -> None:
    names, encodings = [], []
    for item in known:
        name, photo = item.split("=", 1)
        names.append(name)
        encodings.append(face_recognition.face_encodings(face_recognition.load_image_file(photo))[0])
    capture = cv2.VideoCapture(video)
    alerts, costs, frames = [], [], 0
    started = time.monotonic()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        began = time.perf_counter()
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        locations = face_recognition.face_locations(rgb)
        for encoding in face_recognition.face_encodings(rgb, locations):
            matches = face_recognition.compare_faces(encodings, encoding, tolerance=0.50)
            if True in matches:
                alerts.append({"subject_id": names[matches.index(True)], "frame": frames})
        costs.append((time.perf_counter() - began) * 1000)
        frames += 1
    seconds = time.monotonic() - started
    print(json.dumps({"frames": frames, "seconds": seconds, "frame_costs_ms": costs, "alerts": alerts}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
