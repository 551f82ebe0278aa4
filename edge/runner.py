"""Drives pipelines: `replay` over a recorded file, `run` over the configured live cameras.

Alerts leave through sinks: the JSON-lines events file (fsynced per alert) and MQTT.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from edge.alerts import Alert
from edge.comms.mqtt import MqttPublisher
from edge.config import GateboxConfig
from edge.errors import GateboxError
from edge.pipeline import CameraPipeline, Models
from edge.recognition.gallery import Gallery
from edge.sources.reader import FrameReader
from edge.sources.video import LiveCamera, VideoFile
from edge.store.lists import ListStore

log = logging.getLogger(__name__)

AlertSink = Callable[[Alert], None]
STATS_INTERVAL_S = 60.0


class EventsFile:
    """Appends each alert as one JSON line and fsyncs it: the local record survives a power cut."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO = path.open("a", encoding="utf-8")
        except OSError as e:
            raise GateboxError(f"cannot write events file {path}: {e.strerror or e}") from None

    def __call__(self, alert: Alert) -> None:
        self._file.write(alert.to_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def load_gallery(config: GateboxConfig, data_dir: Path) -> Gallery:
    store = ListStore(data_dir)
    try:
        gallery = store.gallery(config.lists)
    finally:
        store.close()
    if len(gallery) == 0:
        log.warning("no faces enrolled in %s (lists: %s): nothing can match", data_dir, ", ".join(config.lists))
    return gallery


def start_publisher(config: GateboxConfig) -> MqttPublisher:
    publisher = MqttPublisher(config.broker, config.box)
    publisher.start()
    if not publisher.wait_connected(timeout=5.0):
        log.warning(
            "MQTT broker %s:%d not reachable yet; alerts are queued and sent when it is",
            config.broker.host, config.broker.port,
        )  # fmt: skip
    return publisher


def stop_publisher(publisher: MqttPublisher, timeout: float) -> int:
    """Flush and close; returns how many alerts the broker never acknowledged."""
    if not publisher.flush(timeout):
        log.error("%d alert(s) not acknowledged by the broker within %.0f s", publisher.unacked, timeout)
    unacked = publisher.unacked
    publisher.close()
    return unacked


@dataclass
class ReplayResult:
    frames: int = 0
    seconds: float = 0.0
    alerts: list[Alert] = field(default_factory=list)
    alert_delays_s: list[float] = field(default_factory=list)  # emission time - the frame's due time
    alert_times_s: list[float] = field(default_factory=list)  # emission time - the first frame's due time
    frame_costs_ms: list[float] = field(default_factory=list)  # pipeline time per frame
    max_lag_s: float = 0.0  # realtime only: how far processing fell behind the camera clock
    cpu_s: float = 0.0  # CPU time of this process (all its threads) during the loop
    unacknowledged: int | None = None  # None when publishing was off

    def line(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        text = f"replay: {self.frames} frames in {self.seconds:.1f} s ({fps:.1f} fps)"
        text += f", {len(self.alerts)} alert(s)"
        if self.unacknowledged is not None:
            text += f", {len(self.alerts) - self.unacknowledged} acknowledged by the broker"
        return text

    def stats(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "seconds": self.seconds,
            "alerts": [{"subject_id": a.subject_id, "frame": a.frame} for a in self.alerts],
            "alert_delays_s": self.alert_delays_s,
            "alert_times_s": self.alert_times_s,
            "cpu_s": self.cpu_s,
            "frame_costs_ms": self.frame_costs_ms,
            "max_lag_s": self.max_lag_s,
        }


def replay(
    config: GateboxConfig,
    data_dir: Path,
    video: Path,
    events: Path | None = None,
    realtime: bool = False,
    publish: bool = True,
    progress: bool | None = None,
    start_frame: int = 0,
    end_frame: int | None = None,
) -> ReplayResult:
    """Run the pipeline over every frame of a recorded file (none is ever dropped)."""
    source = VideoFile(video, video.stem[:64] or "replay", start_frame, end_frame, realtime)
    pipeline = CameraPipeline(config, Models.load(config), load_gallery(config, data_dir))
    sinks: list[AlertSink] = []
    events_file = EventsFile(events) if events else None
    if events_file:
        sinks.append(events_file)
    publisher = start_publisher(config) if publish else None
    if publisher:
        sinks.append(lambda alert: publisher.publish_alert(alert.to_json()))

    result = ReplayResult()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=source.frame_count, unit="frame", disable=not show, file=sys.stderr, leave=False)
    reader = FrameReader(source.frames(), maxsize=8, drop_oldest=False)
    started, cpu_started = time.monotonic(), time.process_time()

    def emit(alerts: list[Alert]) -> None:
        now = time.monotonic()
        for alert in alerts:
            log.info(
                "ALERT %s/%s frame %d track %d score %.2f",
                alert.list, alert.subject_id, alert.frame, alert.track_id, alert.score,
            )  # fmt: skip
            result.alerts.append(alert)
            result.alert_delays_s.append(now - source.due(alert.frame))
            result.alert_times_s.append(now - source.due(source.start_frame))
            for sink in sinks:
                sink(alert)

    try:
        for frame in reader:
            began = time.perf_counter()
            emit(pipeline.process(frame))
            result.frame_costs_ms.append((time.perf_counter() - began) * 1000)
            if realtime:
                result.max_lag_s = max(result.max_lag_s, time.monotonic() - source.due(frame.index))
            result.frames += 1
            bar.update()
        emit(pipeline.finish())
    finally:
        reader.close()
        pipeline.close()
        bar.close()
        result.seconds = time.monotonic() - started
        result.cpu_s = time.process_time() - cpu_started
        if events_file:
            events_file.close()
        if publisher:
            result.unacknowledged = stop_publisher(publisher, config.broker.flush_timeout_s)
    return result


def _camera_loop(
    config: GateboxConfig, camera: LiveCamera, gallery: Gallery, sinks: list[AlertSink], lock: threading.Lock
) -> None:
    pipeline = CameraPipeline(config, Models.load(config), gallery)
    # Live: a small queue that drops the oldest frame, so a slow pipeline never stalls the decoder.
    reader = FrameReader(camera.frames(), maxsize=2, drop_oldest=True)
    name = camera.config.name
    processed, report_at = 0, time.monotonic() + STATS_INTERVAL_S
    try:
        for frame in reader:
            try:
                alerts = pipeline.process(frame)
            except Exception:  # one bad frame must not take the camera (or the box) down
                log.exception("camera %s: frame %d failed; continuing", name, frame.index)
                continue
            for alert in alerts:
                log.info("ALERT %s/%s on camera %s", alert.list, alert.subject_id, alert.camera)
                with lock:
                    for sink in sinks:
                        sink(alert)
            processed += 1
            if time.monotonic() >= report_at:
                log.info("camera %s: %d frames processed, %d dropped so far", name, processed, reader.dropped)
                report_at += STATS_INTERVAL_S
    finally:
        reader.close()
        pipeline.close()
        log.info("camera %s: stopped after %d frames processed, %d dropped", name, processed, reader.dropped)


def run(config: GateboxConfig, data_dir: Path, stop: threading.Event) -> None:
    """Watch every configured camera until `stop` is set; a lost camera is reopened with backoff."""
    if not config.cameras:
        raise GateboxError("no cameras configured: add at least one under `cameras:` in the config")
    Models.load(config)  # fail fast on a missing or corrupt model, before any thread starts
    gallery = load_gallery(config, data_dir)
    events = EventsFile(data_dir / "events.jsonl")
    publisher = start_publisher(config)
    sinks: list[AlertSink] = [events, lambda alert: publisher.publish_alert(alert.to_json())]
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=_camera_loop,
            args=(config, LiveCamera(cam, stop), gallery, sinks, lock),
            name=f"camera-{cam.name}",
            daemon=True,
        )
        for cam in config.cameras
    ]
    for thread in threads:
        thread.start()
    log.info("watching %d camera(s): %s", len(threads), ", ".join(c.name for c in config.cameras))
    try:
        while not stop.wait(1.0):
            for thread, cam in zip(threads, config.cameras, strict=True):
                if not thread.is_alive():
                    raise GateboxError(f"camera {cam.name}: worker stopped unexpectedly")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        events.close()
        stop_publisher(publisher, config.broker.flush_timeout_s)
