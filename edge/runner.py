"""Drives pipelines: `replay` over a recorded file, `run` over the configured live cameras.

Alerts leave through `Box.alerts.emit` (outbox, alert records, and for `run` the box's journal
`DATA_DIR/events.jsonl`); a replay's `--events` file is a further sink, written once the alert is durable.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from edge.annotate import Annotator
from edge.box import Box
from edge.config import GateboxConfig
from edge.health import CameraStatus, Watchdog, heartbeat
from edge.panic.receivers import start_receivers
from edge.panic.service import PanicService
from edge.panic.supervision import ReportingReceiver
from edge.pipeline import CameraPipeline, FrameResult, Models
from edge.plates.matcher import ListedPlate, PlateMatcher
from edge.protocol.alert import Alert
from edge.protocol.embedding import EmbedderSpec
from edge.protocol.errors import GateboxError
from edge.recognition.gallery import Gallery
from edge.remote_preview import serve_previews
from edge.sources.latest import LatestFrames
from edge.sources.reader import FrameReader
from edge.sources.video import LiveCamera, VideoFile
from edge.store.events import EventsFile
from edge.store.lists import ListStore

log = logging.getLogger(__name__)

AlertSink = Callable[[Alert], None]
STATS_INTERVAL_S = 60.0
SNAPSHOT_PURGE_INTERVAL_S = 3600.0


def load_gallery(config: GateboxConfig, data_dir: Path, embedder: EmbedderSpec) -> Gallery:
    """The configured lists' faces; EmbedderMismatch (the box does not start) when `embedder`, the
    configured one, did not make them all."""
    store = ListStore(data_dir)
    try:
        gallery = store.gallery(config.lists, embedder)
    finally:
        store.close()
    if len(gallery) == 0:
        log.warning("no faces enrolled in %s (lists: %s): nothing can match", data_dir, ", ".join(config.lists))
    return gallery


def load_plates(config: GateboxConfig, data_dir: Path) -> PlateMatcher:
    with closing(ListStore(data_dir)) as store:
        versions = store.versions()
        plates = {
            plate: ListedPlate(list_name, subject, f"v{versions[list_name]}" if list_name in versions else "local")
            for plate, (list_name, subject) in store.plates(config.lists).items()
        }
    return PlateMatcher(plates, config.plates.max_fuzzy_distance)


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
    confirmed: int | None = None  # alerts the centre confirmed before the end; None when publishing was off

    def line(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        text = f"replay: {self.frames} frames in {self.seconds:.1f} s ({fps:.1f} fps)"
        text += f", {len(self.alerts)} alert(s)"
        if self.confirmed is not None:
            text += f", {self.confirmed} confirmed by the centre"
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
    camera: str | None = None,
    annotate: Path | None = None,
) -> ReplayResult:
    """Run the pipeline over every frame of a recorded file (none is ever dropped). With `camera`, the
    file plays the part of that configured camera (its name and gate line). With `annotate`, the clip is
    written there with what the pipeline reported drawn on it (`edge.annotate`)."""
    settings = next((c for c in config.cameras if c.name == camera), None)
    if camera is not None and settings is None:
        raise GateboxError(f"--camera {camera}: no such camera in the config")
    # A camera name travels in every alert and must be a slug: the file's name is made one.
    name = camera or re.sub(r"[^A-Za-z0-9_-]", "-", video.stem)[:64] or "replay"
    source = VideoFile(video, name, start_frame, end_frame, realtime)
    gate_line = settings.gate_line if settings else None
    annotator = Annotator(annotate, source.fps, config.recognition, gate_line) if annotate else None
    models = Models.load(config)
    gallery = load_gallery(config, data_dir, models.embedder.spec)
    pipeline = CameraPipeline(config, models, gallery, gate_line, load_plates(config, data_dir))
    sinks: list[AlertSink] = []
    box = (
        Box(config, data_dir, on_gallery_change=lambda: pipeline.set_gallery(
            load_gallery(config, data_dir, models.embedder.spec), load_plates(config, data_dir)))
        if publish else None
    )  # fmt: skip
    if box:
        sinks.append(box.alerts.emit)  # first: once in the outbox, an alert cannot be lost
    events_file = EventsFile(events, faces=True) if events else None  # a tester's export: whole alerts
    if events_file:
        sinks.append(events_file)

    result = ReplayResult()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=source.frame_count, unit="frame", disable=not show, file=sys.stderr, leave=False)
    reader = FrameReader(source.frames(), maxsize=8, drop_oldest=False)
    started, cpu_started = time.monotonic(), time.process_time()

    def emit(out: FrameResult) -> None:
        now = time.monotonic()
        for alert in out.alerts:
            log.info(
                "ALERT %s/%s frame %d track %d score %.2f",
                alert.list, alert.subject_id, alert.frame, alert.track_id, alert.score,
            )  # fmt: skip
            result.alerts.append(alert)
            result.alert_delays_s.append(now - source.due(alert.frame))
            result.alert_times_s.append(now - source.due(source.start_frame))
            for sink in sinks:
                sink(alert)
        if box:
            box.passages(out.passages)

    try:
        for frame in reader:
            began = time.perf_counter()
            out = pipeline.process(frame)
            emit(out)
            result.frame_costs_ms.append((time.perf_counter() - began) * 1000)
            if annotator:  # drawing is not the pipeline's cost
                annotator.add(frame, out)
            if realtime:
                result.max_lag_s = max(result.max_lag_s, time.monotonic() - source.due(frame.index))
            result.frames += 1
            bar.update()
        last = pipeline.finish(source.camera)
        emit(last)
        if annotator:
            annotator.finish(last)
    finally:
        reader.close()
        if annotator:
            annotator.close()
        pipeline.close()
        bar.close()
        result.seconds = time.monotonic() - started
        result.cpu_s = time.process_time() - cpu_started
        if events_file:
            events_file.close()
        if box:
            box.drain(config.broker.flush_timeout_s)
            result.confirmed = sum(not box.outbox.contains(a.event_id) for a in result.alerts)
            box.close()
    return result


class CurrentLists:
    """The gallery and plate list in force, and every camera's pipeline that matches against them.

    A list can be applied at any moment, also while a camera is still starting: a pipeline joins and
    a list update swaps under one lock, so no camera ever keeps matching against a list replaced
    before it joined."""

    def __init__(self, gallery: Gallery, plates: PlateMatcher) -> None:
        self._lock = threading.Lock()
        self._gallery, self._plates = gallery, plates
        self._pipelines: list[CameraPipeline] = []

    def join(self, make: Callable[[Gallery, PlateMatcher], CameraPipeline]) -> CameraPipeline:
        with self._lock:
            pipeline = make(self._gallery, self._plates)
            self._pipelines.append(pipeline)
        return pipeline

    def replace(self, gallery: Gallery, plates: PlateMatcher) -> None:
        with self._lock:
            self._gallery, self._plates = gallery, plates
            for pipeline in self._pipelines:
                pipeline.set_gallery(gallery, plates)


def _camera_loop(
    config: GateboxConfig,
    camera: LiveCamera,
    lists: CurrentLists,
    emit: AlertSink,
    status: CameraStatus,
    passages: Callable[[list], None],
    latest: LatestFrames,
    models: Models | None = None,
) -> None:
    models = models or Models.load(config)  # each camera its own: cv2.dnn nets are not thread-safe
    pipeline = lists.join(lambda gallery, plates: CameraPipeline(config, models, gallery, camera.config.gate_line,
                                                                 plates))  # fmt: skip
    # Live: a small queue that drops the oldest frame, so a slow pipeline never stalls the decoder.
    reader = FrameReader(camera.frames(), maxsize=2, drop_oldest=True)
    name = camera.config.name
    report_at = time.monotonic() + STATS_INTERVAL_S
    try:
        for frame in reader:
            latest.put(frame)
            try:
                out = pipeline.process(frame)
            except Exception:  # one bad frame must not take the camera (or the box) down
                log.exception("camera %s: frame %d failed; continuing", name, frame.index)
                continue
            for alert in out.alerts:
                log.info("ALERT %s/%s on camera %s", alert.list, alert.subject_id, alert.camera)
                emit(alert)
            passages(out.passages)
            status.dropped = reader.dropped
            status.frame_done()
            if time.monotonic() >= report_at:
                log.info("camera %s: %d frames processed, %d dropped so far", name, status.frames, reader.dropped)
                report_at += STATS_INTERVAL_S
    finally:
        reader.close()
        pipeline.close()
        log.info("camera %s: stopped after %d frames processed, %d dropped", name, status.frames, reader.dropped)


def run(config: GateboxConfig, data_dir: Path, stop: threading.Event) -> None:
    """Watch every configured camera and relay every panic button until `stop` is set. A lost camera is
    reopened with backoff, and so is a panic receiver that is down; neither stops the other. A box with
    panic buttons and no camera relays panics only (no models are loaded)."""
    if not config.cameras and not config.panic.devices:
        raise GateboxError("nothing to run: add a camera under `cameras:` or panic buttons under `panic.devices:`")
    started = time.monotonic()
    lists: CurrentLists | None = None
    reload_lists: Callable[[], None] | None = None
    first_models: Models | None = None
    if config.cameras:
        first_models = Models.load(config)  # fail fast on a missing or corrupt model, before any thread starts
        embedder = first_models.embedder.spec
        lists = CurrentLists(load_gallery(config, data_dir, embedder), load_plates(config, data_dir))

        # Registered before the link connects: a list applied from the first retained message on is in force.
        def reload_lists() -> None:  # a list update was stored: every camera matches against it from now on
            assert lists is not None
            lists.replace(load_gallery(config, data_dir, embedder), load_plates(config, data_dir))

    box = Box(config, data_dir, journal=data_dir / "events.jsonl", on_gallery_change=reload_lists)
    statuses = [CameraStatus(cam.name) for cam in config.cameras]
    latest = LatestFrames()
    previews = serve_previews(box, latest.frame)  # the console's Preview button, from the frames the cameras have
    panic = PanicService(config, box.delivery, box.states, latest.jpeg) if config.panic.devices else None
    receivers: list[ReportingReceiver] = []
    threads: list[threading.Thread] = []
    watchdog = Watchdog()
    try:
        # Panic receivers first: their configuration errors stop the box before any camera starts.
        receivers = start_receivers(config.panic, panic) if panic else []
        for i, (cam, status) in enumerate(zip(config.cameras, statuses, strict=True)):
            assert lists is not None  # loaded above whenever a camera is configured
            camera_models = first_models if i == 0 else None  # the models loaded to fail fast serve camera 0
            threads.append(threading.Thread(
                target=_camera_loop,
                args=(config, LiveCamera(cam, stop, status), lists, box.alerts.emit, status, box.passages, latest,
                      camera_models),
                name=f"camera-{cam.name}",
                daemon=True,
            ))  # fmt: skip
            threads[-1].start()
        if threads:
            log.info("watching %d camera(s): %s", len(threads), ", ".join(c.name for c in config.cameras))
        else:
            log.info("no camera configured: relaying panic buttons only (%d device(s))", len(config.panic.devices))
        watchdog.notify("READY=1")
        next_heartbeat = time.monotonic()
        next_purge = time.monotonic() + SNAPSHOT_PURGE_INTERVAL_S
        # A camera that is down still makes progress (it retries); one silent past this is hung.
        stale_after = max([60.0] + [3 * (c.read_timeout_s + c.open_timeout_s + c.reconnect.max_backoff_s)
                                    for c in config.cameras])  # fmt: skip
        while not stop.wait(min(1.0, watchdog.interval_s or 1.0)):
            for thread, cam in zip(threads, config.cameras, strict=True):
                if not thread.is_alive():
                    raise GateboxError(f"camera {cam.name}: worker stopped unexpectedly")
            watchdog.ping_if_healthy(statuses, stale_after)
            if panic:
                panic.tick()
            if time.monotonic() >= next_heartbeat and box.link:
                box.delivery.send(heartbeat(box, statuses, started, panic.rejected if panic else None,
                                            [r.status for r in receivers]))  # fmt: skip
                next_heartbeat += config.link.heartbeat_interval_s
            if time.monotonic() >= next_purge:  # a box runs for months: retention is kept while it does
                box.alerts.purge_snapshots()
                next_purge += SNAPSHOT_PURGE_INTERVAL_S
    finally:
        stop.set()
        watchdog.notify("STOPPING=1")
        for receiver in receivers:
            receiver.close()
        previews.close()
        for thread in threads:
            thread.join(timeout=10)
        box.drain(config.broker.flush_timeout_s)
        box.close()
