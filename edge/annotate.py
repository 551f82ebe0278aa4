"""`gatebox replay VIDEO --annotate OUT.mp4`: the clip again, with what the pipeline saw drawn on it, so a
tester sees why something did or did not alert.

Everything drawn comes from the pipeline's `FrameResult` (it decides nothing here): every tracked face
with its track id, the latest nearest subject and distance of its embeddings and its best distance so
far, held against the list's operating point (`match_distance`, `strong_distance`); the gate line and
which way is OUT (the `camera preview` drawing); the plates read; and each alert raised, as a box on
the face and a banner across the top, held for `ALERT_HOLD_S` so a viewer can read it. Frames go out
one behind: the alerts decided at the end of the stream (the embeddings still in flight) land on the
last frame, and the output has exactly as many frames as were processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import GateLineConfig, RecognitionConfig
from edge.pipeline import FrameResult
from edge.plates.stage import TEXT
from edge.preview import LINE_COLOUR, PLATE_COLOUR, Colour, Image, draw_gate_line, label
from edge.protocol.alert import Alert
from edge.protocol.errors import GateboxError
from edge.types import Detections, Frame, Match

ALERT_HOLD_S = 2.0  # how long an alert's box and banner stay on screen
ALERT_COLOUR: Colour = (0, 0, 255)  # red: an alert raised (its box and the banner)
BANNER_TEXT_COLOUR: Colour = (255, 255, 255)  # white on the red banner
COUNTS_COLOUR: Colour = (0, 255, 0)  # green: the track's latest match is within its list's match_distance
NEAR_COLOUR: Colour = (0, 160, 255)  # orange: nearest to a listed subject, but too far to count
NOBODY_COLOUR: Colour = (200, 200, 200)  # grey: not embedded yet, or nobody enrolled is near


Box = tuple[int, int, int, int]


def _box(xyxy: npt.ArrayLike) -> Box:
    x1, y1, x2, y2 = (round(float(v)) for v in np.asarray(xyxy).reshape(4))
    return x1, y1, x2, y2


@dataclass
class _Track:
    """What the pipeline reported about one face track so far."""

    latest: Match | None = None
    embedded: int = 0  # samples of it embedded
    best: Match | None = None  # its nearest match over all those samples


@dataclass(frozen=True)
class _Raised:
    alert: Alert
    until: int  # the last output frame it is drawn on


class Annotator:
    """Draws each frame's `FrameResult` onto the frame and writes the clip (mp4v)."""

    def __init__(
        self, path: Path, fps: float, recognition: RecognitionConfig, gate_line: GateLineConfig | None
    ) -> None:
        if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise GateboxError(f"--annotate {path}: give an .mp4 path")
        self._path, self._fps = path, fps
        self._recognition = recognition.with_embedder_thresholds()  # the distances' own thresholds, as the pipeline
        self._gate_line = gate_line
        self._writer: cv2.VideoWriter | None = None
        self._tracks: dict[int, _Track] = {}
        self._raised: list[_Raised] = []
        self._pending: tuple[Frame, FrameResult] | None = None  # drawn and written when the next frame arrives
        # Detectors run every n-th frame: what the last pass found stays on screen until the next.
        self._faces, self._plates = Detections(), Detections()
        self.frames = 0  # written so far

    def add(self, frame: Frame, result: FrameResult) -> None:
        """One processed frame and what the pipeline reported for it."""
        if self._pending is not None:
            self._write(*self._pending)
        self._pending = (frame, result)

    def finish(self, result: FrameResult) -> None:
        """The end of the stream: its alerts and matches go onto the last frame, which is then written."""
        if self._pending is not None:
            frame, last = self._pending
            merged = FrameResult(last.alerts + result.alerts, last.passages, last.faces,
                                 last.matches + result.matches, last.plates)  # fmt: skip
            self._write(frame, merged)
            self._pending = None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def _write(self, frame: Frame, result: FrameResult) -> None:
        image = frame.image.copy()
        self._remember(result)
        self._draw(image, result, frame.index)
        if self._writer is None:
            height, width = image.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self._path), fourcc, self._fps, (width, height))
            if not self._writer.isOpened():
                raise GateboxError(f"cannot write {self._path}: check the folder exists and is writable")
        self._writer.write(image)
        self.frames += 1

    def _remember(self, result: FrameResult) -> None:
        self._faces = self._faces if result.faces is None else result.faces
        self._plates = self._plates if result.plates is None else result.plates
        for observation in result.matches:
            track = self._tracks.setdefault(observation.sample.track_id, _Track())
            track.latest, track.embedded = observation.match, track.embedded + 1
            match = observation.match
            if match is not None and (track.best is None or match.distance < track.best.distance):
                track.best = match
        hold = max(1, round(ALERT_HOLD_S * self._fps))
        self._raised = [r for r in self._raised if r.until >= self.frames]
        self._raised += [_Raised(alert, self.frames + hold - 1) for alert in result.alerts]

    def _draw(self, image: Image, result: FrameResult, index: int) -> None:
        scale = max(0.4, image.shape[1] / 1600)
        if self._gate_line is not None:
            draw_gate_line(image, self._gate_line, scale)
        shown = {track_id: _box(xyxy) for xyxy, track_id in zip(self._faces.xyxy, self._faces.tracker_id.tolist(),
                                                                   strict=True)}  # fmt: skip
        for track_id, box in shown.items():
            self._face(image, box, track_id, scale)
        texts = self._plates.data.get(TEXT, np.empty(len(self._plates), str))
        for xyxy, text in zip(self._plates.xyxy, texts, strict=True):
            x1, y1, x2, y2 = _box(xyxy)
            cv2.rectangle(image, (x1, y1), (x2, y2), PLATE_COLOUR, 2)
            label(image, f"plate {text}", (x1, y2 + 16), PLATE_COLOUR, scale)
        if self._raised:  # the banner: one line per alert on screen
            line_height = round(30 * scale)
            cv2.rectangle(image, (0, 0), (image.shape[1] - 1, line_height * len(self._raised) + 12), ALERT_COLOUR,
                          cv2.FILLED)  # fmt: skip
        for line, raised in enumerate(self._raised):
            alert = raised.alert  # on its face where it is now; where it was decided once its track is gone
            box = shown.get(alert.track_id, alert.bbox) if alert.kind != "plate_match" else alert.bbox
            self._alert(image, alert, box, line, scale)
        label(image, f"frame {index}", (4, image.shape[0] - 4), LINE_COLOUR, scale * 0.8)

    def _face(self, image: Image, box: Box, track_id: int, scale: float) -> None:
        """The track's box and, above it, its latest match (and best so far) against its list's operating point."""
        x1, y1, x2, y2 = box
        track = self._tracks.get(track_id, _Track())
        lines, colour = [f"#{track_id} not embedded yet"], NOBODY_COLOUR
        if track.embedded and track.latest is None:
            lines = [f"#{track_id} nobody near ({track.embedded} seen)"]
        elif track.latest is not None:
            latest = track.latest
            point = self._recognition.operating_point(latest.list_name)
            colour = COUNTS_COLOUR if latest.distance < point.match_distance else NEAR_COLOUR
            best = f", best {track.best.subject_id} {track.best.distance:.2f}" if track.best else ""
            held = f"{latest.list_name}: counts <{point.match_distance:.2f}, strong <={point.strong_distance:.2f}"
            lines = [f"#{track_id} {latest.subject_id} {latest.distance:.2f}{best}", held]
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        step = round(22 * scale)
        for i, text in enumerate(lines):
            label(image, text, (x1, y1 - 6 - step * (len(lines) - 1 - i)), colour, scale * 0.7)

    def _alert(self, image: Image, alert: Alert, box: Box, line: int, scale: float) -> None:
        x1, y1, x2, y2 = box
        cv2.rectangle(image, (x1, y1), (x2, y2), ALERT_COLOUR, max(3, round(4 * scale)))
        who = alert.plate or alert.subject_id
        text = (f"ALERT {alert.kind} {alert.list}/{who} track {alert.track_id} frame {alert.frame} "
                f"score {alert.score:.2f} ({alert.matching_frames} matching)")  # fmt: skip
        label(image, text, (8, round(30 * scale) * (line + 1)), BANNER_TEXT_COLOUR, scale)
