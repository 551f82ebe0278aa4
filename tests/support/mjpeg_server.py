"""A test camera: serves a real video file as an HTTP MJPEG stream (multipart/x-mixed-replace),
looping, at a fixed frame rate, like a cheap IP camera. Run as a separate process so a test can
kill it (camera gone) or SIGSTOP it (camera frozen, connection still open).

    python tests/support/mjpeg_server.py --port 8554 --video clip.mp4 --fps 10
"""

from __future__ import annotations

import argparse
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

BOUNDARY = "gateboxframe"


def load_jpegs(video: str, max_frames: int, width: int) -> list[bytes]:
    capture = cv2.VideoCapture(video)
    frames: list[bytes] = []
    while len(frames) < max_frames:
        ok, image = capture.read()
        if not ok:
            break
        scale = width / image.shape[1]
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    if not frames:
        raise SystemExit(f"no frames decoded from {video}")
    return frames


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--max-frames", type=int, default=100)
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args()
    jpegs = load_jpegs(args.video, args.max_frames, args.width)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            i = 0
            try:
                while True:
                    jpeg = jpegs[i % len(jpegs)]
                    header = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    self.wfile.write(header.encode())
                    self.wfile.write(jpeg + b"\r\n")
                    self.wfile.flush()
                    i += 1
                    time.sleep(1.0 / args.fps)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("serving", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
