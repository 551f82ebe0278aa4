"""Recognition stage: embeds the faces of undecided tracks and finds the nearest enrolled subject."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edge.config import RecognitionConfig
from edge.recognition.embedder import DlibFaceEmbedder
from edge.recognition.gallery import Gallery
from edge.tracking.iou_tracker import TrackerUpdate
from edge.types import FaceObservation, Frame


@dataclass
class _TrackSchedule:
    embeddings: int = 0
    frames_since_embed: int = 0


class FaceRecogniser:
    """Embedding is the expensive step (tens of ms per face), so each track is embedded only every
    `embed_every_n_frames`, at most `max_embeddings_per_track` times, and never after the decision
    stage has settled it."""

    def __init__(self, embedder: DlibFaceEmbedder, gallery: Gallery, config: RecognitionConfig) -> None:
        self._embedder = embedder
        self._gallery = gallery
        self._config = config
        self._schedules: dict[int, _TrackSchedule] = {}
        self._settled: set[int] = set()

    def set_gallery(self, gallery: Gallery) -> None:
        self._gallery = gallery

    def settle(self, track_ids: Iterable[int]) -> None:
        """Stop embedding these tracks: their outcome is decided."""
        self._settled.update(track_ids)

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self._schedules.pop(track_id, None)
            self._settled.discard(track_id)

    def observe(self, frame: Frame, tracked: TrackerUpdate) -> list[FaceObservation]:
        faces = tracked.detections
        due = np.zeros(len(faces), bool)
        wide_enough = faces.width >= self._config.min_face_px
        for i, track_id in enumerate(faces.tracker_id.tolist()):
            if track_id in self._settled or not wide_enough[i]:
                continue
            schedule = self._schedules.setdefault(track_id, _TrackSchedule(frames_since_embed=10**9))
            schedule.frames_since_embed += 1
            if (
                schedule.embeddings < self._config.max_embeddings_per_track
                and schedule.frames_since_embed >= self._config.embed_every_n_frames
            ):
                due[i] = True
                schedule.embeddings += 1
                schedule.frames_since_embed = 0
        matches = [None] * len(faces)
        if due.any() and len(self._gallery):
            embeddings = self._embedder.embed(frame.image, faces.xyxy[due])
            found = self._gallery.nearest(embeddings, self._config.match_distance)
            for i, match in zip(np.flatnonzero(due).tolist(), found, strict=True):
                matches[i] = match
        return [
            FaceObservation(int(track_id), tuple(map(float, box)), match)
            for track_id, box, match in zip(faces.tracker_id, faces.xyxy, matches, strict=True)
        ]
