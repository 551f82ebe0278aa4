"""Panic latency (issue 6): press → message at a centre subscriber on the broker, over loopback,
while the box's video pipeline is busy with the 1080p crowd clip as a live camera; half the buttons
are by that camera, so their panics also carry its current view.

    .venv/bin/python benchmarks/panic_bench.py [--presses 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.broker import Mosquitto, free_port  # noqa: E402
from tests.support.mqtt import Collector  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
TOKEN = "benchmark-token-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        http_port = free_port()
        (work / "token").write_text(TOKEN)
        (work / "box.yaml").write_text(json.dumps({
            "box": {"site": "bench", "box_id": "panic"}, "broker": {"port": broker.port},
            "cameras": [{"name": "gate", "url": str(DATA / "video" / "crowd_toward_camera.mp4")}],
            # Even buttons are by the camera: their panics carry its view (a 1080p frame as a JPEG).
            "panic": {"coalesce_window_s": 0,
                      "devices": [{"device_id": f"btn-{i}", "camera": "gate" if i % 2 == 0 else None}
                                  for i in range(10)],
                      "http": {"port": http_port, "token_file": str(work / "token")}},
        }))  # fmt: skip
        centre = Collector(broker.port, "gatebox/bench/panic/panic", receipts=True)
        box = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(work / "box.yaml"), "--data-dir",
                                str(work / "box"), "run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=REPO)  # fmt: skip
        latencies: dict[bool, list[float]] = {True: [], False: []}  # with the camera's view, without
        try:
            time.sleep(8)  # models loaded, the camera running
            for i in range(args.presses):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{http_port}/panic", method="POST",
                    data=json.dumps({"device_id": f"btn-{i % 10}"}).encode(),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )  # fmt: skip
                sent = time.monotonic()
                urllib.request.urlopen(request, timeout=5).read()
                message = centre.next(timeout=10)
                latencies[json.loads(message.payload)["snapshot_jpeg_b64"] is not None].append(time.monotonic() - sent)
                time.sleep(0.02)
        finally:
            box.terminate()
            box.wait(30)
            centre.close()
            broker.stop()
    for with_view, label in ((False, "without a camera view"), (True, "with the camera's view")):
        ms = np.array(latencies[with_view]) * 1000
        if not len(ms):
            print(f"press -> centre subscriber, {label}: none (the camera showed nothing yet?)")
            continue
        p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
        print(f"press -> centre subscriber, {label}, {len(ms)} presses, pipeline busy on 1080p25: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ms.max():.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
