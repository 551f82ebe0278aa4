"""The benchmark harness (issue 3): every figure in docs/benchmarks.md comes from one run of this.

1. The naive loop (face_recognition's video example) and gatebox on the same clip, one after
   the other in the same run: fps, ratio, true/false alerts against ground truth, CPU seconds,
   peak RSS; and a PNG of per-frame cost.
2. Idle CPU on a static scene, played at the file's own pace.
3. Alert latency at --realtime: first visibility of the subject to the alert's emission.
4. Several cameras at once: the shared clips replayed in parallel at their own pace.

    ./scripts/bench [--skip-naive] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.scoring import load_truth, score  # noqa: E402
from tests.support import crowd  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
CROWD = DATA / "video" / "crowd_toward_camera.mp4"
CROWD_TRUTH = REPO / "benchmarks" / "truth" / "crowd_toward_camera.csv"
PARKING = DATA / "video" / "parking_lot_cars.mp4"
STATIC_FRAMES = (268, 315)  # parking_lot_cars.mp4: nothing moves (the car parked by 238 is absorbed by 268)
PARALLEL_CLIPS = [
    "crowd_toward_camera.mp4",
    "campus_pedestrians.avi",
    "one_by_one_from_behind.mp4",
    "parking_lot_cars.mp4",
]


@dataclass
class Measured:
    stdout: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class _Alert:
    subject_id: str
    frame: int


def measured(cmd: list[str]) -> Measured:
    """Run a command; its CPU time and peak RSS come from wait4 (children it reaped included)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        process = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read()[-3000:]}")
        return Measured(out.read(), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def gatebox(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "edge", *map(str, args)]


def replay_stats(data_dir: Path, video: Path, stats: Path, *extra: str) -> tuple[Measured, dict]:
    run = measured(gatebox("--data-dir", data_dir, "replay", video, "--no-publish", "--stats", stats, *extra))
    return run, json.loads(stats.read_text())


def enrol_crowd(work: Path) -> tuple[Path, dict[str, Path]]:
    data_dir, photos = work / "box", {}
    for subject, list_name in crowd.ENROL_LISTS.items():
        photos[subject] = crowd.write_face_crop(CROWD, subject, work / f"{subject}.png")
        measured(gatebox("--data-dir", data_dir, "enroll", "--list", list_name, "--subject", subject, photos[subject]))
    return data_dir, photos


def compare_with_naive(work: Path, data_dir: Path, photos: dict[str, Path], skip_naive: bool) -> dict:
    truth = load_truth(CROWD_TRUTH)
    run, stats = replay_stats(data_dir, CROWD, work / "gatebox.json")
    scored = score([_Alert(**a) for a in stats["alerts"]], truth)
    result = {
        "gatebox": {
            "frames": stats["frames"], "loop_s": stats["seconds"], "fps": stats["frames"] / stats["seconds"],
            "process_wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mb": run.peak_rss_mb,
            "true_alerts": scored.true_alerts, "false_alerts": len(scored.false_alerts), "missed": scored.missed,
            "frame_costs_ms": stats["frame_costs_ms"],
        }
    }  # fmt: skip
    if not skip_naive:
        naive_run = measured(
            [sys.executable, str(REPO / "benchmarks" / "naive_loop.py"), str(CROWD)]
            + [f"{name}={photo}" for name, photo in photos.items()]
        )
        naive = json.loads(naive_run.stdout)
        naive_scored = score([_Alert(**a) for a in naive["alerts"]], truth)
        result["naive"] = {
            "frames": naive["frames"], "loop_s": naive["seconds"], "fps": naive["frames"] / naive["seconds"],
            "process_wall_s": naive_run.wall_s, "cpu_s": naive_run.cpu_s, "peak_rss_mb": naive_run.peak_rss_mb,
            "true_alerts": naive_scored.true_alerts, "false_alerts": len(naive_scored.false_alerts),
            "missed": naive_scored.missed, "alert_events": len(naive["alerts"]),
            "frame_costs_ms": naive["frame_costs_ms"],
        }  # fmt: skip
        result["speedup"] = result["gatebox"]["fps"] / result["naive"]["fps"]
    return result


def detectors(work: Path, data_dir: Path) -> dict:
    """Each face detector alone (ms per frame, faces found) and the whole replay with it."""
    import cv2

    from edge.config import DetectorConfig, GateboxConfig
    from edge.detectors import build_face_detector
    from edge.models import verify_models

    capture = cv2.VideoCapture(str(CROWD))
    frames: list[np.ndarray] = []
    while len(frames) < 105:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    paths = verify_models(GateboxConfig().models_path)
    result = {}
    for kind in ("retinaface", "dlib_hog"):
        detector = build_face_detector(DetectorConfig(kind=kind), paths)
        detector.detect(frames[0])  # warm-up
        started = time.perf_counter()
        found = [len(detector.detect(f)) for f in frames[::3]]
        ms = (time.perf_counter() - started) / len(found) * 1000
        config = work / f"{kind}.yaml"
        config.write_text(f"detector: {{kind: {kind}}}\n")
        run = measured(
            [sys.executable, "-m", "edge", "--config", str(config), "--data-dir", str(data_dir), "replay", str(CROWD),
             "--no-publish", "--stats", str(work / f"{kind}.json")]
        )  # fmt: skip
        stats = json.loads((work / f"{kind}.json").read_text())
        scored = score([_Alert(**a) for a in stats["alerts"]], load_truth(CROWD_TRUTH))
        result[kind] = {"ms_per_frame": ms, "faces_per_frame": float(np.mean(found)),
                        "replay_fps": stats["frames"] / stats["seconds"], "cpu_s": run.cpu_s,
                        "true_alerts": scored.true_alerts, "false_alerts": len(scored.false_alerts)}  # fmt: skip
    return result


def static_scene(work: Path, data_dir: Path) -> dict:
    start, end = STATIC_FRAMES
    _, stats = replay_stats(
        data_dir,
        PARKING,
        work / "static.json",
        "--realtime",
        "--start-frame",
        str(start),
        "--end-frame",
        str(end),
    )
    return {"frames": stats["frames"], "seconds": stats["seconds"], "cpu_s": stats["cpu_s"],
            "core_share": stats["cpu_s"] / stats["seconds"]}  # fmt: skip


def latency(work: Path, data_dir: Path, runs: int) -> dict:
    truth = {row.subject_id: row.first_frame for row in load_truth(CROWD_TRUTH)}
    fps = 25.0
    samples, lags = [], []
    for i in range(runs):
        _, stats = replay_stats(data_dir, CROWD, work / f"latency{i}.json", "--realtime")
        lags.append(stats["max_lag_s"])
        for alert, emitted in zip(stats["alerts"], stats["alert_times_s"], strict=True):
            samples.append(emitted - truth[alert["subject_id"]] / fps)
    return {"runs": runs, "latencies_s": samples, "p95_s": float(np.percentile(samples, 95)),
            "max_s": max(samples), "max_lag_s": max(lags)}  # fmt: skip


def parallel_cameras(work: Path, data_dir: Path) -> dict:
    processes = []
    for i, clip in enumerate(PARALLEL_CLIPS):
        stats = work / f"camera{i}.json"
        cmd = gatebox("--data-dir", data_dir, "replay", DATA / "video" / clip, "--no-publish", "--realtime",
                      "--end-frame", "300", "--stats", stats)  # fmt: skip
        processes.append(
            (
                clip,
                stats,
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO),
            )
        )
    result = {}
    for clip, stats, process in processes:
        assert process.wait() == 0, clip
        s = json.loads(stats.read_text())
        costs = np.array(s["frame_costs_ms"])
        result[clip] = {"frames": s["frames"], "seconds": s["seconds"], "max_lag_s": s["max_lag_s"],
                        "mean_cost_ms": float(costs.mean())}  # fmt: skip
    return result


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for name, style in (("naive", "tab:red"), ("gatebox", "tab:blue")):
        if name in result:
            costs = result[name]["frame_costs_ms"]
            ax.plot(costs, color=style, lw=1, label=f"{name}: mean {statistics.mean(costs):.0f} ms/frame")
    ax.axhline(40, color="gray", ls="--", lw=1, label="real time at 25 fps (40 ms)")
    ax.set_yscale("log")
    ax.set_xlabel("frame of crowd_toward_camera.mp4 (1920x1080)")
    ax.set_ylabel("processing time per frame (ms, log)")
    ax.set_title("Per-frame cost: naive face_recognition loop vs gatebox (2-core box)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-naive", action="store_true", help="skip the (slow) naive baseline")
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench")
    args = parser.parse_args()
    if not CROWD.is_file():
        raise SystemExit(f"benchmark data not found at {DATA} (set GATEBOX_TEST_DATA)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_dir, photos = enrol_crowd(work)
        results = {"compare": compare_with_naive(work, data_dir, photos, args.skip_naive)}
        results["detectors"] = detectors(work, data_dir)
        results["static_scene"] = static_scene(work, data_dir)
        results["latency"] = latency(work, data_dir, args.latency_runs)
        results["parallel_cameras"] = parallel_cameras(work, data_dir)
    plot(results["compare"], args.out / "per_frame_cost.png")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print_report(results)


def print_report(r: dict) -> None:
    c = r["compare"]
    print("== naive loop vs gatebox, crowd_toward_camera.mp4 (1920x1080, 105 frames), same run")
    print(f"{'':<9} {'fps':>6} {'loop s':>7} {'CPU s':>6} {'peak RSS MB':>12} {'true':>5} {'false':>6}  missed")
    for name in ("naive", "gatebox"):
        if name in c:
            m = c[name]
            print(f"{name:<9} {m['fps']:>6.2f} {m['loop_s']:>7.1f} {m['cpu_s']:>6.1f} {m['peak_rss_mb']:>12.0f} "
                  f"{m['true_alerts']:>5} {m['false_alerts']:>6}  {','.join(m['missed']) or '-'}")  # fmt: skip
    if "speedup" in c:
        print(f"speed-up: {c['speedup']:.1f}x (naive raised {c['naive']['alert_events']} per-frame alert events)")
    print("== face detectors on crowd_toward_camera.mp4 (every 3rd frame alone; then the whole replay with each)")
    for kind, m in r["detectors"].items():
        print(
            f"   {kind:<11} {m['ms_per_frame']:6.1f} ms/frame, {m['faces_per_frame']:.1f} faces/frame; replay "
            f"{m['replay_fps']:.1f} fps, {m['cpu_s']:.1f} CPU s, {m['true_alerts']} true / {m['false_alerts']} false"
        )
    s = r["static_scene"]
    print(f"== static scene (parking_lot_cars.mp4 frames {STATIC_FRAMES[0]}-{STATIC_FRAMES[1]}, at file pace): "
          f"{100 * s['core_share']:.1f}% of one core ({s['cpu_s']:.2f} CPU s in {s['seconds']:.1f} s)")  # fmt: skip
    lat = r["latency"]
    print(
        f"== alert latency at --realtime ({lat['runs']} runs, first visible frame -> alert): "
        f"p95 {lat['p95_s']:.2f} s, max {lat['max_s']:.2f} s; max lag behind the camera {lat['max_lag_s']:.2f} s"
    )
    print("== 4 clips replayed in parallel at their own pace (first 300 frames)")
    for clip, m in r["parallel_cameras"].items():
        print(
            f"   {clip:<28} {m['frames']:>4} frames in {m['seconds']:5.1f} s, "
            f"mean {m['mean_cost_ms']:5.1f} ms/frame, max lag {m['max_lag_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
