"""Messages between the centre and the boxes beside alerts and panics: what the centre sends a box
(receipts, plain JSON, only the centre may write that topic; signed commands) and a box's reports
(heartbeat, alert state, list ack, passage). The box builds each with its model and the receiver
validates it with the same model; anything else is refused. Alerts and panics are
`edge.protocol.alert.Alert` and `edge.protocol.panic.PanicEvent`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.protocol import topics
from edge.protocol.alert import PlateText
from edge.protocol.wire import Count, Counts, EventId, Name, Seconds, ShortText, Slug, Timestamp, Version


class Receipt(BaseModel):
    """`<prefix>/<site>/<box>/receipt`: the centre has these events; the box may forget them."""

    model_config = ConfigDict(extra="forbid")
    event_ids: list[EventId] = Field(min_length=1, max_length=1000, description="Events (or panic messages) stored.")


def receipt_for(event_topic: str, *receipt_ids: str) -> tuple[str, bytes]:
    """The centre's receipt for what came on `event_topic` (`<prefix>/<site>/<box>/<leaf>`): the
    topic it goes to (that box's `receipt`) and its payload, naming `receipt_ids` (an alert's
    `event_id`, a panic's `message_id`)."""
    topic = event_topic.rsplit("/", 1)[0] + "/" + topics.RECEIPT
    # Not validated here: a receipt repeats what a box sent (a panic's `message_id` may be longer than
    # an `EventId`), and a receiver must never fail on it; the box validates what it gets.
    return topic, Receipt.model_construct(event_ids=list(receipt_ids)).model_dump_json().encode()


# What an operator can make of an alert (or panic), and what the box then reports it is in.
AckState = Literal["acked", "closed"]


class AckAlert(BaseModel):
    """Signed command: an operator acknowledged (report → dispose) or closed an alert."""

    model_config = ConfigDict(extra="forbid")
    command: Literal["ack_alert"]
    event_id: EventId
    state: AckState
    note: str | None = Field(None, max_length=1000)
    by: str | None = Field(None, max_length=100)
    issued_at: datetime


# Later commands join AckAlert here as a union discriminated by `command`.
Command = AckAlert


# --- what a box reports (box → centre) -----------------------------------------------------------


class AlertState(BaseModel):
    """`<prefix>/<site>/<box>/alert_state`: the box applied an operator's ack or close."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_: Literal["gatebox.alert_state/1"] = Field("gatebox.alert_state/1", alias="schema")
    event_id: EventId = Field(description="The box's own alert (or panic).")
    state: AckState = Field(description="What the box recorded.")
    note: str | None = Field(None, max_length=1000, description="The operator's note, as the command carried it.")
    by: str | None = Field(None, max_length=100, description="The operator, as the command carried it.")
    ts: Timestamp | None = Field(None, description="The box's clock when it applied the state.")
    sent_at: datetime | None = Field(None, description="The box's clock when this copy was sent.")
    age_s: Seconds | None = Field(None, description="Seconds it waited on the box (monotonic clock).")


class ListAck(BaseModel):
    """`<prefix>/<site>/<box>/list_ack`: a list version is in force on the box."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_: Literal["gatebox.list_ack/1"] = Field("gatebox.list_ack/1", alias="schema")
    list: Slug = Field(description="The list's name.")
    version: Version = Field(description="The version now in force (the centre's numbering).")
    entries: Count = Field(description="Subjects (or plates) in it.")
    status: Literal["applied"] = Field("applied", description="Only applied versions are reported.")
    ts: Timestamp | None = Field(None, description="The box's clock when it applied the version.")
    sent_at: datetime | None = Field(None, description="The box's clock when this copy was sent.")
    age_s: Seconds | None = Field(None, description="Seconds it waited on the box (monotonic clock).")


class Passage(BaseModel):
    """`<prefix>/<site>/<box>/passage` (with `plates.passages`): a vehicle read at the gate, listed or
    not, for the centre's access log."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_: Literal["gatebox.passage/1"] = Field("gatebox.passage/1", alias="schema")
    site: Slug = Field(description="The box's site: must be the topic's.")
    box_id: Slug = Field(description="The box: must be the topic's.")
    camera: Slug = Field(description="The camera that read the plate.")
    ts: Timestamp = Field(description="The box's clock when the plate was read.")
    plate: PlateText = Field(description="The plate as read (normalised).")
    colour: ShortText | None = Field(None, description="blue, yellow, green, white or black, if known.")
    direction: Literal["in", "out"] | None = Field(None, description="Across the camera's gate line; none without one.")
    sent_at: datetime | None = Field(None, description="The box's clock when this copy was sent.")
    age_s: Seconds | None = Field(None, description="Seconds it waited on the box (monotonic clock).")


# A box newer than the centre may report more in its heartbeat than the centre knows: what the
# centre does not know it drops (`extra="ignore"`) rather than showing a healthy box as silent.
# Everything it keeps is bounded.
class CameraReport(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    connected: bool | None = Field(None, description="The stream is open.")
    fps: float | None = Field(None, ge=0, le=1000, description="Frames processed per second, recently.")
    frames: Count | None = Field(None, description="Frames processed since start.")
    dropped: Count | None = Field(None, description="Frames dropped since start.")


class OutboxReport(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    depth: Count | None = Field(None, description="Messages not yet confirmed.")
    bytes: Count | None = Field(None, description="Their size.")
    dropped: Counts = Field(default_factory=dict, description="Low-priority messages dropped, per kind.")
    oldest_unconfirmed_age_s: Seconds | None = Field(None, description="Age of the oldest unconfirmed message.")


class ListReport(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: Version | None = Field(None, description="The version in force (none yet: null).")
    subjects: Count | None = Field(None, description="Subjects in it.")


class Heartbeat(BaseModel):
    """`<prefix>/<site>/<box>/heartbeat` (QoS 0, every `link.heartbeat_interval_s`)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    schema_: Literal["gatebox.heartbeat/1"] = Field("gatebox.heartbeat/1", alias="schema")
    site: Slug | None = Field(None, description="The box's site: must be the topic's.")
    box_id: Slug | None = Field(None, description="The box: must be the topic's.")
    ts: Timestamp | None = Field(None, description="The box's clock.")
    version: ShortText | None = Field(None, description="The box's software version.")
    uptime_s: Seconds | None = Field(None, description="Seconds since the box started.")
    cameras: dict[Name, CameraReport] = Field(default_factory=dict, max_length=64, description="Per camera.")
    outbox: OutboxReport | None = Field(None, description="What waits for the centre's confirmation.")
    lists: dict[Name, ListReport | Counts] = Field(
        default_factory=dict, max_length=64, description="Per list; `rejected`: refused updates per reason."
    )
    bad_input: Counts = Field(default_factory=dict, description="Refused commands and receipts, per reason.")
    panic_rejected: Counts = Field(default_factory=dict, description="Refused panic-button input, per reason.")
