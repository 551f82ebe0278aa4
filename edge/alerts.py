"""The alert that leaves the box: a pydantic model, JSON on the wire."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Final, Literal, TypedDict

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from edge.comms.messages import EventId
from edge.comms.wire import AlertSnapshot, Count, Seconds, ShortText
from edge.config import BoxConfig, Slug
from edge.types import AlertDecision

if TYPE_CHECKING:
    from edge.plates.stage import PlateDecision

ALERT_SCHEMA: Final = "gatebox.alert/1"
SNAPSHOT_MAX_SIDE = 200


Pixel = Annotated[int, Field(ge=-(2**31), le=2**31)]
PlateText = Annotated[str, Field(max_length=32)]


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    site_name: str | None = Field(None, max_length=200)
    gate: str | None = Field(None, max_length=100)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    grid_cell: str | None = Field(None, max_length=64)


class Alert(BaseModel):
    """A listed subject was recognised at the gate. Published on `<prefix>/<site>/<box>/alert`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_: Literal["gatebox.alert/1"] = Field(ALERT_SCHEMA, alias="schema", description="Payload schema.")
    event_id: EventId = Field(description="Unique id fixed when the alert is raised; the centre de-duplicates on it.")
    kind: Literal["face_match", "elder_leaving", "plate_match"] = Field(
        description="`face_match`: a listed subject was seen; `elder_leaving`: an at-risk elder crossed the gate "
        "line outwards."
    )
    list: Slug = Field(description="The list the subject is on, e.g. `watchlist`, `missing_elders`.")
    list_version: Annotated[str, Field(max_length=32)] = Field(
        "local", description="`v<N>`: the centre's list version that matched; `local`: enrolled on the box."
    )
    subject_id: str = Field(min_length=1, max_length=256, description="The subject's id in that list.")
    site: Slug = Field(description="Site of the box.")
    box_id: Slug = Field(description="Box that raised the alert.")
    camera: Slug = Field(description="Camera name.")
    ts: datetime = Field(description="Capture time of the deciding frame, UTC, ISO 8601.")
    frame: Count = Field(description="Index of the deciding frame in its source.")
    track_id: Count = Field(description="Track of the face on this camera.")
    score: float = Field(ge=0, le=1, description="1 - embedding distance of the best matching frame.")
    distance: float = Field(ge=0, le=1000, description="Best embedding distance of the track to the subject.")
    matching_frames: int = Field(ge=1, le=2**31, description="Frames of the track that matched the subject.")
    bbox: tuple[Pixel, Pixel, Pixel, Pixel] = Field(description="Face box x1, y1, x2, y2 in source pixels.")
    snapshot_jpeg_b64: AlertSnapshot = Field(description="JPEG of the face (padded crop, ≤200 px), base64.")
    location: Location | None = Field(None, description="Where the gate is, from the box's config, for dispatch.")
    plate: PlateText | None = Field(None, description="plate_match: the listed plate.")
    plate_read: PlateText | None = Field(
        None, description="plate_match: what was read (differs from `plate` when fuzzy)."
    )
    fuzzy: bool = Field(False, description="plate_match: the read matched only up to confusable characters.")
    plate_colour: ShortText | None = Field(
        None, description="plate_match: blue, yellow, green, white or black, if known."
    )
    sent_at: datetime | None = Field(None, description="The box's clock when this copy was sent (set on sending).")
    age_s: Seconds | None = Field(
        None,
        description="Seconds the alert waited on the box before this copy was sent (monotonic clock): "
        "`sent_at - age_s` against `ts` shows the box's clock skew.",
    )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


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


def _where(box: BoxConfig) -> _Where:
    """The fields every alert of this box carries about where it is."""
    return {
        "site": box.site,
        "box_id": box.box_id,
        "location": Location(site_name=box.site_name, gate=box.gate, lat=box.lat, lon=box.lon, grid_cell=box.grid_cell),
    }


def build_alert(box: BoxConfig, decision: AlertDecision) -> Alert:
    sample = decision.sample
    x1, y1, x2, y2 = (round(v) for v in sample.xyxy)
    return Alert(
        event_id=uuid.uuid4().hex,
        kind=decision.kind,
        list=decision.match.list_name,
        list_version=decision.match.list_version,
        subject_id=decision.match.subject_id,
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


def build_plate_alert(box: BoxConfig, decision: PlateDecision) -> Alert:
    match = decision.match
    return Alert(
        event_id=uuid.uuid4().hex,
        kind="plate_match",
        list=match.list_name,
        list_version=match.list_version,
        subject_id=match.subject_id,
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
