"""The whole per-camera flow on one screen.

    Frame → detect faces → track → recognise (embed + 1:N match) → decide → Alert

Each stage is its own module with one typed input and output; this file only wires them and
holds no image maths. Publishing (MQTT, events file) happens outside, in `edge.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.alerts import Alert, build_alert
from edge.config import GateboxConfig
from edge.decision import AlertDecider
from edge.detectors import FaceDetector, build_face_detector
from edge.models import verify_models
from edge.recognition.embedder import DlibFaceEmbedder
from edge.recognition.gallery import Gallery
from edge.recognition.recogniser import FaceRecogniser
from edge.tracking.iou_tracker import IouTracker
from edge.types import FaceDetections, Frame


@dataclass(frozen=True)
class Models:
    """Loaded once per process and shared by every camera's pipeline (read-only)."""

    detector: FaceDetector
    embedder: DlibFaceEmbedder

    @classmethod
    def load(cls, config: GateboxConfig) -> Models:
        paths = verify_models(config.models_path)  # refuses to start on a missing or corrupt model
        return cls(
            detector=build_face_detector(config.detector),
            embedder=DlibFaceEmbedder(paths["face_landmarks_5"], paths["face_embedding"]),
        )


class CameraPipeline:
    """Per-camera state (tracks, evidence) around the shared models."""

    def __init__(self, config: GateboxConfig, models: Models, gallery: Gallery) -> None:
        self._config = config
        self._detector = models.detector
        self._tracker = IouTracker(config.tracking.iou_threshold, config.tracking.max_missed_frames)
        self._recogniser = FaceRecogniser(models.embedder, gallery, config.recognition)
        self._decider = AlertDecider(config.recognition)

    def set_gallery(self, gallery: Gallery) -> None:
        self._recogniser.set_gallery(gallery)

    def process(self, frame: Frame) -> list[Alert]:
        if frame.index % self._config.detector.every_n_frames:
            return []
        faces: FaceDetections = self._detector.detect(frame.image)
        tracked = self._tracker.update(faces, frame.index)
        observations = self._recogniser.observe(frame, tracked)
        decisions = self._decider.update(frame, observations)

        self._recogniser.settle(self._decider.decided_tracks)
        self._recogniser.forget(tracked.ended)
        self._decider.forget(tracked.ended)
        return [build_alert(self._config.box, frame, d) for d in decisions]
