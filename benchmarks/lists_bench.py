"""List benchmarks (issue 5): 1:N matching at 1k/10k/100k identities against a per-subject loop,
and a 100,000-entry list received, verified and swapped in by a box replaying the crowd clip at
its own pace (time to apply, and the replay's frame times during it).

    .venv/bin/python benchmarks/lists_bench.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from centre.lists import write_bundle  # noqa: E402
from edge.protocol.bundle import ListEntry, encode  # noqa: E402
from edge.protocol.embedding import DLIB_EMBEDDER  # noqa: E402
from edge.recognition.gallery import Gallery  # noqa: E402
from tests.support import crowd  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.mqtt import Collector  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
CROWD = DATA / "video" / "crowd_toward_camera.mp4"


def random_embeddings(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DLIB_EMBEDDER.dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True) * 0.6  # dlib embeddings have norms around 0.6


def matching(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), probes: int = 50) -> None:
    print(f"{'identities':>10} {'vectorised ms/probe':>20} {'per-subject loop ms/probe':>26} {'gallery MB':>11}")
    queries = random_embeddings(probes, seed=1)
    for n in sizes:
        embeddings = random_embeddings(n)
        tracemalloc.start()
        gallery = Gallery(embeddings, ("watchlist",) * n, tuple(f"elder-{i:06d}" for i in range(n)))
        memory = (tracemalloc.get_traced_memory()[0] + embeddings.nbytes) / 2**20  # matrix + norms + labels
        tracemalloc.stop()
        started = time.perf_counter()
        for q in queries:
            gallery.nearest(q[None], 0.5)
        vectorised = (time.perf_counter() - started) / probes * 1000
        loop_probes = max(3, probes * 1000 // n)
        started = time.perf_counter()
        for q in queries[:loop_probes]:  # the straightforward way: one distance per subject in Python
            best = min(range(n), key=lambda i: float(np.linalg.norm(gallery.embeddings[i] - q)))
            del best
        loop = (time.perf_counter() - started) / loop_probes * 1000
        print(f"{n:>10} {vectorised:>20.2f} {loop:>26.1f} {memory:>11.1f}")


def big_list_swap(entries: int = 100_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        try:
            subprocess.run([sys.executable, "-m", "edge", "centre", "keygen", "--out", str(work / "keys")],
                           check=True, capture_output=True, cwd=REPO)  # fmt: skip
            listed = [ListEntry(subject_id=f"elder-{i:06d}", embeddings=1) for i in range(entries)]
            bundle = work / "big.gbl"
            write_bundle(bundle, "missing_elders", 1, encode(listed, random_embeddings(entries, seed=7)))
            photo = crowd.write_face_crop(CROWD, "boy", work / "boy.png")
            enrol = [sys.executable, "-m", "edge", "--data-dir", str(work / "box"), "enroll", "--list", "watchlist",
                     "--subject", "boy", str(photo)]  # fmt: skip
            subprocess.run(enrol, check=True, capture_output=True, cwd=REPO)
            config = work / "box.yaml"
            config.write_text(json.dumps({
                "box": {"site": "bench", "box_id": "b1"}, "broker": {"port": broker.port},
                "link": {"centre_public_key": str(work / "keys" / "centre_ed25519.pub.pem")},
            }))  # fmt: skip
            centre = Collector(broker.port, "gatebox/bench/b1/list_ack")
            results = {}
            for label, publish in (("without a list update", False), ("while a 100k list is applied", True)):
                stats = work / f"{publish}.json"
                box = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(config), "--data-dir",
                                        str(work / "box"), "replay", str(CROWD), "--realtime", "--stats", str(stats)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
                applied_s = None
                if publish:
                    time.sleep(2.5)  # the replay is under way
                    started = time.monotonic()
                    subprocess.run([sys.executable, "-m", "edge", "--config", str(config), "centre", "lists",
                                    "publish", str(bundle), "--key", str(work / "keys" / "centre_ed25519.pem")],
                                   check=True, capture_output=True, cwd=REPO)  # fmt: skip
                    published_s = time.monotonic() - started
                    centre.next(timeout=300)
                    applied_s = time.monotonic() - started
                box.wait()
                s = json.loads(stats.read_text())
                costs = np.array(s["frame_costs_ms"])
                results[label] = (costs, s["max_lag_s"], applied_s, published_s if publish else None)
            centre.close()
        finally:
            broker.stop()
    size_mb = entries * (DLIB_EMBEDDER.dim * 4 + 40) / 2**20
    print(f"\n100k-entry list (~{size_mb:.0f} MB, {entries} identities): crowd clip replayed at --realtime meanwhile")
    for label, (costs, lag, applied, published) in results.items():
        extra = (
            f"; published in {published:.1f} s, applied (list_ack) {applied:.1f} s after publishing began"
            if applied
            else ""
        )
        print(f"  {label:<30} frame ms mean {costs.mean():5.1f}, p95 {np.percentile(costs, 95):6.1f}, "
              f"max {costs.max():6.1f}; max lag {lag:.2f} s{extra}")  # fmt: skip


if __name__ == "__main__":
    matching()
    big_list_swap()
