"""The alert a box sends the centre (`<prefix>/<site>/<box>/alert`, schema gatebox.alert/1): a
listed face or plate was recognised at the gate. The box builds it (`edge.alerts`); the centre
validates every one it receives against this model before anything else reads it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.protocol.wire import AlertSnapshot, Count, EventId, Seconds, ShortText, Slug

ALERT_SCHEMA: Final = "gatebox.alert/1"

Pixel = Annotated[int, Field(ge=-(2**31), le=2**31)]
# Who the subject is, bounded as a list entry's fields are (`edge.protocol.bundle.ListEntry`).
SUBJECT_NAME_MAX: Final = 200
SUBJECT_CATEGORY_MAX: Final = 32
SUBJECT_PRIORITY_MAX: Final = 9
SubjectName = Annotated[str, Field(max_length=SUBJECT_NAME_MAX)]
SubjectCategory = Annotated[str, Field(max_length=SUBJECT_CATEGORY_MAX)]
SubjectPriority = Annotated[int, Field(ge=0, le=SUBJECT_PRIORITY_MAX)]
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
    subject_name: SubjectName | None = Field(
        None, description="The subject's name, from the list entry (absent when the entry has none)."
    )
    subject_category: SubjectCategory | None = Field(
        None, description="The entry's category, e.g. `dementia` (absent for faces enrolled on the box)."
    )
    subject_priority: SubjectPriority | None = Field(
        None, description="The entry's priority, 0-9 (absent for faces enrolled on the box)."
    )
    site: Slug = Field(description="Site of the box.")
    box_id: Slug = Field(description="Box that raised the alert.")
    camera: Slug = Field(description="Camera name.")
    ts: datetime = Field(
        description="Capture time of the deciding frame, UTC, ISO 8601 (`elder_leaving`: of the frame in which the "
        "elder crossed the gate line)."
    )
    frame: Count = Field(description="Index of the deciding frame in its source (`elder_leaving`: the crossing's).")
    track_id: Count = Field(description="Track of the face on this camera.")
    score: float = Field(ge=0, le=1, description="1 - embedding distance of the best matching frame.")
    distance: float = Field(ge=0, le=1000, description="Best embedding distance of the track to the subject.")
    matching_frames: int = Field(ge=1, le=2**31, description="Frames of the track that matched the subject.")
    bbox: tuple[Pixel, Pixel, Pixel, Pixel] = Field(
        description="Face box x1, y1, x2, y2 in source pixels, in the frame `frame`."
    )
    snapshot_jpeg_b64: AlertSnapshot = Field(
        description="JPEG of the face in the frame `frame` (padded crop, ≤200 px), base64: for `elder_leaving`, "
        "the elder at the gate line."
    )
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
