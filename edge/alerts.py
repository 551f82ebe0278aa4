"""Alerts as the box builds them (the model itself, `Alert`, is the protocol's:
`edge.protocol.alert`), and the face snapshot that travels inside one."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypedDict

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import BoxConfig
from edge.protocol.alert import Alert, Location
from edge.types import AlertDecision, SubjectDetails

if TYPE_CHECKING:
    from edge.plates.stage import PlateDecision

SNAPSHOT_MAX_SIDE = 200


def face_snapshot(crop: npt.NDArray[np.uint8]) -> bytes:
    """The sample's padded face crop as a JPEG, small enough to travel inline in the alert."""
    return jpeg_snapshot(crop, SNAPSHOT_MAX_SIDE, quality=85)


def jpeg_snapshot(image: npt.NDArray[np.uint8], max_side: int, quality: int) -> bytes:
    """`image` scaled down to at most `max_side` pixels, as a JPEG."""
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok: bool
    jpeg: npt.NDArray[np.uint8]
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding of a snapshot failed")
    return jpeg.tobytes()


class _Where(TypedDict):
    site: str
    box_id: str
    location: Location


class _Who(TypedDict):
    subject_name: str | None
    subject_category: str | None
    subject_priority: int | None


def _where(box: BoxConfig) -> _Where:
    """The fields every alert of this box carries about where it is."""
    return {
        "site": box.site,
        "box_id": box.box_id,
        "location": Location(site_name=box.site_name, gate=box.gate, lat=box.lat, lon=box.lon, grid_cell=box.grid_cell),
    }


def _who(subjects: Mapping[tuple[str, str], SubjectDetails], list_name: str, subject_id: str) -> _Who:
    """The alert's fields naming the subject, from their list entry (none for a subject without one)."""
    who = subjects.get((list_name, subject_id)) or SubjectDetails()
    return {"subject_name": who.name, "subject_category": who.category, "subject_priority": who.priority}


def build_alert(
    box: BoxConfig, decision: AlertDecision, subjects: Mapping[tuple[str, str], SubjectDetails] | None = None
) -> Alert:
    """`subjects`: who each listed subject is (`Gallery.subjects`), so the alert names its subject."""
    sample = decision.sample
    x1, y1, x2, y2 = (round(v) for v in sample.xyxy)
    return Alert(
        event_id=uuid.uuid4().hex,
        kind=decision.kind,
        list=decision.match.list_name,
        list_version=decision.match.list_version,
        subject_id=decision.match.subject_id,
        **_who(subjects or {}, decision.match.list_name, decision.match.subject_id),
        camera=sample.camera,
        ts=datetime.fromtimestamp(sample.ts, tz=timezone.utc),
        frame=sample.frame_index,
        track_id=sample.track_id,
        score=round(max(0.0, 1.0 - decision.match.distance), 4),
        distance=round(decision.match.distance, 4),
        matching_frames=decision.matching_frames,
        bbox=(x1, y1, x2, y2),
        snapshot_jpeg_b64=base64.b64encode(face_snapshot(sample.crop)).decode("ascii"),
        **_where(box),
    )


def build_plate_alert(
    box: BoxConfig, decision: PlateDecision, subjects: Mapping[tuple[str, str], SubjectDetails] | None = None
) -> Alert:
    match = decision.match
    return Alert(
        event_id=uuid.uuid4().hex,
        kind="plate_match",
        list=match.list_name,
        list_version=match.list_version,
        subject_id=match.subject_id,
        **_who(subjects or {}, match.list_name, match.subject_id),
        camera=decision.camera,
        ts=datetime.fromtimestamp(decision.ts, tz=timezone.utc),
        frame=decision.frame_index,
        track_id=decision.track_id,
        score=round(min(1.0, decision.confidence), 4),
        distance=match.distance,
        matching_frames=decision.reads,
        bbox=decision.box,
        snapshot_jpeg_b64=base64.b64encode(face_snapshot(decision.crop)).decode("ascii"),
        plate=match.plate,
        plate_read=decision.text,
        fuzzy=match.fuzzy,
        plate_colour=decision.colour,
        **_where(box),
    )
