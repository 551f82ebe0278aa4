"""The whole per-camera flow on one screen.

    Frame → motion gate → (plates: find + read in moving regions → track → vote → match plate lists)
          → scene-cut check (a cut ends every track)
          → detect faces (in moving/tracked regions, every n-th frame) → track (overlap + size + looks)
          → sample (every face in view, steadily, within a budget) → embed (worker process)
          → 1:N match → weigh the track's evidence (per-list operating point) → Alert
                                                     track → gate-line crossings ↗ (elder leaving)
    Each frame → FrameResult(alerts, passages; and for drawing: the tracked faces, their matches, the plates read)

Each stage is its own module with one typed input and output (`edge.types.Detections` from the
detectors through tracking); this file only wires them and holds no image maths. Publishing
(MQTT, events file) happens outside, in `edge.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.alerts import build_alert, build_plate_alert
from edge.config import GateboxConfig, GateLineConfig
from edge.counting.people import PersonPassage
from edge.counting.stage import PeopleStage, PersonDetector
from edge.decision import AlertDecider
from edge.detectors import FaceDetector, build_face_detector
from edge.detectors.motion_people import MotionPeopleDetector
from edge.detectors.onnx_objects import OnnxObjectDetector
from edge.detectors.regions import RegionFaceDetection
from edge.models import verify_models
from edge.motion.detector import MotionDetector, small_gray
from edge.motion.scene_cut import SceneCutDetector
from edge.plates.finder import PlateFinder
from edge.plates.matcher import PlateMatcher
from edge.plates.reader import PlateTextReader
from edge.plates.stage import PassageRecord, PlateStage
from edge.protocol.alert import Alert
from edge.protocol.embedding import EmbedderMismatch
from edge.recognition.embedder import FaceEmbedder, embedder_recipe
from edge.recognition.gallery import Gallery
from edge.recognition.matching import nearest_subjects
from edge.recognition.sampler import FaceQuality, FaceSampler, face_views
from edge.recognition.worker import Batch, EmbeddingRunner
from edge.tracking.iou_tracker import IouTracker, TrackerUpdate
from edge.tracking.line_crossing import LineCrossing
from edge.types import Detections, FaceObservation, Frame, GateCrossing


@dataclass(frozen=True)
class Models:
    """Loaded once per camera pipeline; verified against the manifest first."""

    detector: FaceDetector
    embedder: FaceEmbedder  # the configured one (recognition.embedder); workers rebuild it from its recipe
    plate_finder: PlateFinder | None = None
    plate_reader: PlateTextReader | None = None
    objects: OnnxObjectDetector | None = None
    # Bodies, for counting people (`passages.people`). The motion finder holds this camera's background:
    # like every model here it is one camera's (`edge.runner` loads Models per camera).
    people: PersonDetector | MotionPeopleDetector | None = None

    @classmethod
    def load(cls, config: GateboxConfig) -> Models:
        paths = verify_models(config.models_path)  # refuses to start on a missing or corrupt model
        finder = reader = None
        if config.plates.enabled:
            finder = PlateFinder.from_models(paths, config.plates.max_width)
            reader = PlateTextReader(paths["plate_text_recogniser"])
        detector = build_face_detector(config.detector, paths)
        objects = OnnxObjectDetector(config.objects) if config.objects else None
        return cls(detector, embedder_recipe(config.recognition, paths).build(), finder, reader, objects,
                   person_detector(config, objects))  # fmt: skip


@dataclass(frozen=True)
class FrameResult:
    """What one frame (or the end of the stream) produced, for `edge.runner` to publish."""

    alerts: list[Alert]  # faces and plates on a list, elders leaving
    passages: list[PassageRecord | PersonPassage]  # vehicles whose pass ended, people who crossed the line
    # What the stages saw, reported (never acted on) so `replay --annotate` can draw why something alerted:
    faces: Detections | None = None  # tracked faces (tracker_id set); None: no face detection pass on this frame
    matches: list[FaceObservation] = field(default_factory=list)  # embeddings back this frame, nearest subject each
    plates: Detections | None = None  # plates read (data `text`); None: no plate pass on this frame


class CameraPipeline:
    """Per-camera state (background, tracks, evidence) around the models."""

    def __init__(
        self,
        config: GateboxConfig,
        models: Models,
        gallery: Gallery,
        gate_line: GateLineConfig | None = None,
        plates: PlateMatcher | None = None,
    ) -> None:
        # Distances come from the configured embedder; so must the thresholds they are held to.
        config = config.model_copy(update={"recognition": config.recognition.with_embedder_thresholds()})
        self._config = config
        self._plates = None
        if models.plate_finder and models.plate_reader:
            matcher = plates or PlateMatcher({}, 0)
            self._plates = PlateStage(
                models.plate_finder, models.plate_reader, matcher, config.plates, models.objects, gate_line
            )
        self._gate = LineCrossing(gate_line) if gate_line else None
        counting = config.passages.people
        self._people = (PeopleStage(counting, gate_line, models.people, config.motion.region_padding)
                        if counting.enabled and gate_line else None)  # fmt: skip
        self._embedder = models.embedder.spec
        self._gallery = self._checked(gallery)
        self._motion = MotionDetector(config.motion) if config.motion.enabled else None
        self._detection = RegionFaceDetection(models.detector, config.motion.region_padding)
        self._cuts = SceneCutDetector(config.tracking.scene_cut_correlation)
        self._tracker = IouTracker(
            config.tracking.iou_threshold, config.tracking.max_missed, config.tracking.max_size_ratio
        )
        self._sampler = FaceSampler(FaceQuality(models.embedder.landmarks), config.recognition)
        self._embedding = EmbeddingRunner(models.embedder, config.recognition.embedding_workers)
        self._decider = AlertDecider(config.recognition, config.lists_of_kind("leaving-only"))
        self._seen: Detections | None = None  # this frame's tracked faces and matches, reported in its FrameResult
        self._matched: list[FaceObservation] = []

    def set_gallery(self, gallery: Gallery, plates: PlateMatcher | None = None) -> None:
        self._gallery = self._checked(gallery)
        if self._plates and plates is not None:
            self._plates.set_matcher(plates)

    def process(self, frame: Frame) -> FrameResult:
        """Feed one frame: the alerts decided so far (embeddings lag a couple of frames) and the
        vehicles whose pass ended."""
        height, width = frame.image.shape[:2]
        whole_frame = np.array([[0, 0, width, height]], np.float32)
        gray = small_gray(frame.image, self._config.motion.width)
        moving = self._motion.update_gray(gray, width, height) if self._motion else whole_frame
        if self._cuts.update(gray):  # every frame: a cut between two detection passes still ends the tracks
            self._end_tracks(self._tracker.end_all(), frame.image.shape)
            if self._people:
                self._people.end_all(frame)
        alerts: list[Alert] = []
        self._seen, self._matched, plates = None, [], None
        if self._plates and frame.index % self._config.plates.every_n_frames == 0:
            alerts += [build_plate_alert(self._config.box, d, self._gallery.subjects)
                       for d in self._plates.process(frame, moving)]  # fmt: skip
            plates = self._plates.last_read
        if frame.index % self._config.detector.every_n_frames == 0:
            alerts += self._faces(frame, moving)
        if self._people:
            self._people.bodies(frame, moving)
        return FrameResult(alerts, self._passages(), self._seen, self._matched, plates)

    def _faces(self, frame: Frame, moving: npt.NDArray[np.float32]) -> list[Alert]:
        regions = np.concatenate([moving, self._tracker.predicted_boxes(frame.index)])
        faces = self._detection.detect(frame.image, regions)
        self._seen = Detections()
        if faces is None:  # nothing moved and nobody is tracked: skip the frame
            return []
        tracked = self._tracker.update(faces, frame.index, frame.image)
        self._seen = tracked.detections
        samples = self._sampler.select(frame, tracked, self._decider.decided_tracks, self._decider.promising_tracks)
        alerts = self._decide(self._embedding.submit(samples))
        if self._people:
            self._people.faces(frame, tracked)
        if self._gate:
            crossed = self._gate.update(tracked, frame.image.shape)
            at_line = face_views(frame, tracked, crossed)  # an elder's leaving alert shows this moment
            crossings = {track: GateCrossing(way, at_line[track]) for track, way in crossed.items()}
            leaving = self._decider.crossings(crossings)
            alerts += [build_alert(self._config.box, d, self._gallery.subjects) for d in leaving]
        self._sampler.forget(tracked.ended)
        self._decider.forget(tracked.ended)
        return alerts

    def finish(self, camera: str = "") -> FrameResult:
        """End of stream: decide on the embeddings still in flight; close the vehicles' passages."""
        if self._plates:
            self._plates.flush(camera)
        if self._people:
            self._people.flush()
        self._matched = []
        return FrameResult(self._decide(self._embedding.drain()), self._passages(), matches=self._matched)

    def close(self) -> None:
        self._embedding.close()

    def _decide(self, batches: list[Batch]) -> list[Alert]:
        alerts = []
        for batch in batches:
            matches = nearest_subjects(self._gallery, batch.embeddings, self._config.recognition.max_match_distance)
            observations = [FaceObservation(s, m) for s, m in zip(batch.samples, matches, strict=True)]
            self._matched += observations
            decided = self._decider.update(observations)
            alerts += [build_alert(self._config.box, d, self._gallery.subjects) for d in decided]
        return alerts

    def _end_tracks(self, ended: tuple[int, ...], frame_shape: tuple[int, ...]) -> None:
        """Tracks ended outside a tracker update (a scene cut): every stage forgets them at once."""
        if self._gate:
            self._gate.update(TrackerUpdate(Detections(), ended), frame_shape)
        self._sampler.forget(ended)
        self._decider.forget(ended)

    def _passages(self) -> list[PassageRecord | PersonPassage]:
        vehicles: list[PassageRecord | PersonPassage] = list(self._plates.take_passages()) if self._plates else []
        return vehicles + (list(self._people.take_passages()) if self._people else [])

    def _checked(self, gallery: Gallery) -> Gallery:
        if gallery.embedder != self._embedder:
            raise EmbedderMismatch(f"a gallery of {gallery.embedder.id} embeddings cannot be searched with "
                                   f"{self._embedder.id} embeddings")  # fmt: skip
        return gallery


def person_detector(
    config: GateboxConfig, objects: OnnxObjectDetector | None
) -> PersonDetector | MotionPeopleDetector | None:
    """The body detector for counting people: none unless `passages.people` is on."""
    people = config.passages.people
    if not people.enabled or people.detector == "none":
        return None
    if people.detector == "motion":
        return MotionPeopleDetector(people.min_person_area)
    if people.detector == "onnx":
        if objects is None or config.objects is None or "person" not in config.objects.classes:
            raise ValueError("passages.people.detector: onnx needs `objects` with a `person` class")
        return objects
    from edge.detectors.hog_people import HogPeopleDetector

    return HogPeopleDetector(people.detect_width, people.min_confidence)
