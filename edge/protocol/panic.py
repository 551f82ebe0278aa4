"""What the panic path sends the centre: a resident's panic (`<prefix>/<site>/<box>/panic`, top
priority, resent until the centre's receipt names its `message_id`) and device health notices
(`<prefix>/<site>/<box>/device`, low priority)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.protocol.alert import Location
from edge.protocol.wire import MAX_SAFE_INT, EventId, PanicSnapshot, Seconds, Slug

# A panic message: a press (or presses coalesced), a long press, or the resident's cancel.
PanicKind = Literal["panic", "long_press", "cancel"]
# A device notice: a device that reports heartbeats fell silent, or reported a low battery.
DeviceNoticeKind = Literal["device_offline", "low_battery"]


class PanicEvent(BaseModel):
    """A resident pressed a panic button. Published on `<prefix>/<site>/<box>/panic`, top priority,
    resent until the centre's receipt. Presses within the coalescing window update the same event
    (same `event_id`, higher `presses` and `sequence`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    schema_: Literal["gatebox.panic/1"] = Field("gatebox.panic/1", alias="schema")
    event_id: EventId
    message_id: str = Field(max_length=100, description="`<event_id>:<sequence>`: what the centre's receipt names.")
    kind: PanicKind
    device_id: Slug
    household: str | None = Field(None, max_length=200)
    address: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=200)
    camera: str | None = Field(None, max_length=200, description="The camera nearest the device.")
    pressed_at: datetime
    received_at: datetime
    sequence: int = Field(ge=1, le=MAX_SAFE_INT, description="Messages so far for this event (1 = first).")
    presses: int = Field(ge=1, le=MAX_SAFE_INT, description="Presses coalesced into this event.")
    battery: int | None = Field(None, ge=0, le=100)
    site: Slug
    box_id: Slug
    location: Location | None = None
    snapshot_jpeg_b64: PanicSnapshot | None = Field(
        None, description="First message of an event: the nearest camera's view (JPEG ≤640 px, base64)."
    )
    snapshot_ts: datetime | None = Field(None, description="Capture time of that snapshot, UTC.")
    sent_at: datetime | None = Field(None, description="The box's clock when this copy was sent.")
    age_s: Seconds | None = Field(None, description="Seconds it waited on the box (monotonic clock).")

    @model_validator(mode="after")
    def _message_id_names_this_copy(self) -> PanicEvent:
        # The receipt names `message_id`: a box must not be able to get receipts for other ids.
        if self.message_id != f"{self.event_id}:{self.sequence}":
            raise ValueError("message_id must be `<event_id>:<sequence>`")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class DeviceNotice(BaseModel):
    """Low-priority device health: `<prefix>/<site>/<box>/device`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_: Literal["gatebox.device/1"] = Field("gatebox.device/1", alias="schema")
    kind: DeviceNoticeKind
    device_id: Slug
    household: str | None = Field(None, max_length=200)
    detail: str = Field(max_length=1000)
    ts: datetime
    site: Slug
    box_id: Slug
    sent_at: datetime | None = Field(None, description="The box's clock when this copy was sent.")
    age_s: Seconds | None = Field(None, description="Seconds it waited on the box (monotonic clock).")
