"""Messages between the centre and the boxes beside alerts and panics: what the centre sends a box
(receipts, plain JSON, only the centre may write that topic; signed commands) and a box's reports
(heartbeat, alert state, list ack, passage, camera preview); and, opt-in, what other tools on the broker read (Home
Assistant's discovery config, Frigate-style alert events). The box builds each with its model and the receiver
validates it with the same model; anything else is refused. Alerts and panics are
`edge.protocol.alert.Alert` and `edge.protocol.panic.PanicEvent`."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from edge.protocol import topics
from edge.protocol.alert import PlateText
from edge.protocol.wire import (
    AlertSnapshot,
    Count,
    Counts,
    EventId,
    Name,
    PreviewImage,
    Seconds,
    ShortText,
    Slug,
    Timestamp,
    Version,
)


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


class PreviewRequest(BaseModel):
    """Signed command: an operator asked to see what the box's cameras see (the console's Preview button).
    The box answers with one `CameraPreview` per camera (or the one named), or one saying why it cannot."""

    model_config = ConfigDict(extra="forbid")
    command: Literal["preview"]
    request_id: EventId = Field(description="The centre's id for the request; every reply names it.")
    camera: Slug | None = Field(None, description="One camera; none: every camera of the box.")
    by: str | None = Field(None, max_length=100, description="The operator who asked.")
    issued_at: datetime = Field(description="The centre's clock when it was asked.")


# Every command a box takes, told apart by `command`.
Command = Annotated[AckAlert | PreviewRequest, Field(discriminator="command")]
COMMANDS: TypeAdapter[AckAlert | PreviewRequest] = TypeAdapter(Command)


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
    """`<prefix>/<site>/<box>/passage`: one person or vehicle that passed the gate, listed or not, for the
    centre's passage log and hourly counts. One schema for both: a vehicle's plate fields, a person's
    face view (only with `passages.people.snapshots` on). Vehicle passages from boxes before people
    were counted (`gatebox.passage/1`, no `subject`) are still valid: they are vehicles."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_: Literal["gatebox.passage/1", "gatebox.passage/2"] = Field("gatebox.passage/2", alias="schema")
    passage_id: EventId | None = Field(
        None, description="The box's id for this passage: a resent copy is stored once (none before /2)."
    )
    site: Slug = Field(description="The box's site: must be the topic's.")
    box_id: Slug = Field(description="The box: must be the topic's.")
    camera: Slug = Field(description="The camera that saw the passage.")
    ts: Timestamp = Field(description="The box's clock at the passage (a vehicle: when its plate was read).")
    subject: Literal["person", "vehicle"] = Field("vehicle", description="Who passed: a person or a vehicle.")
    plate: PlateText | None = Field(None, description="A vehicle's plate as read (normalised).")
    colour: ShortText | None = Field(None, description="A plate's colour: blue, yellow, green, white or black.")
    direction: Literal["in", "out"] | None = Field(None, description="Across the camera's gate line; none without one.")
    snapshot_jpeg_b64: AlertSnapshot | None = Field(
        None, description="A person's best face view (JPEG, base64), only with `passages.people.snapshots` on."
    )
    snapshot_expires_at: Timestamp | None = Field(
        None, description="When the box and the centre delete the face view (its retention period)."
    )
    sent_at: datetime | None = Field(None, description="The box's clock when this copy was sent.")
    age_s: Seconds | None = Field(None, description="Seconds it waited on the box (monotonic clock).")

    @model_validator(mode="after")
    def _fields_of_its_subject(self) -> Passage:
        if self.subject == "vehicle" and self.plate is None and self.schema_ == "gatebox.passage/1":
            raise ValueError("a gatebox.passage/1 vehicle passage names its plate")
        if self.subject == "person" and (self.plate is not None or self.colour is not None):
            raise ValueError("a person's passage carries no plate")
        if self.subject == "vehicle" and self.snapshot_jpeg_b64 is not None:
            raise ValueError("a vehicle's passage carries no face view")
        return self


PreviewStatus = Literal["ok", "no_camera", "unknown_camera", "no_frame", "failed"]
JPEG_MAGIC = b"\xff\xd8\xff"


class CameraPreview(BaseModel):
    """`<prefix>/<site>/<box>/preview`: a box's answer to a `preview` command: one camera's latest frame
    with the gate line, the detection window and the faces found drawn on it (`gatebox camera preview`'s
    drawing), or why there is none (`no_camera`: the box has no camera, it relays panic buttons only).
    Best effort, never queued: a preview is not an event, and a stale one is worth nothing."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_: Literal["gatebox.preview/1"] = Field("gatebox.preview/1", alias="schema")
    site: Slug = Field(description="The box's site: must be the topic's.")
    box_id: Slug = Field(description="The box: must be the topic's.")
    request_id: EventId | None = Field(None, description="The request this answers.")
    camera: Slug | None = Field(None, description="The camera shown (none when the box has none).")
    status: PreviewStatus = Field(description="`ok` with an image; otherwise why there is none.")
    detail: ShortText | None = Field(None, description="What went wrong, for the operator.")
    taken_at: Timestamp | None = Field(None, description="The box's clock when the frame was captured.")
    ts: Timestamp | None = Field(None, description="The box's clock when the preview was drawn.")
    image_jpeg_b64: PreviewImage | None = Field(None, description="The drawn frame (JPEG, base64).")
    width: int | None = Field(None, ge=1, le=16384, description="The image's width in pixels.")
    height: int | None = Field(None, ge=1, le=16384, description="The image's height in pixels.")
    summary: list[ShortText] = Field(
        default_factory=list, max_length=12, description="What was found, one line each (as the CLI prints it)."
    )

    @model_validator(mode="after")
    def _an_image_when_ok(self) -> CameraPreview:
        if self.status == "ok":
            if self.image_jpeg_b64 is None or self.camera is None or self.taken_at is None:
                raise ValueError("an `ok` preview names its camera and carries its image and capture time")
            if base64.b64decode(self.image_jpeg_b64)[:3] != JPEG_MAGIC:
                raise ValueError("the image is not a JPEG")
        elif self.image_jpeg_b64 is not None:
            raise ValueError(f"a `{self.status}` preview carries no image")
        return self


class PassageCounts(BaseModel):
    """One camera's passages since the box started, per subject and direction (heartbeat)."""

    model_config = ConfigDict(extra="ignore")
    person_in: Count = Field(0, description="People who crossed the gate line inwards.")
    person_out: Count = Field(0, description="People who crossed it outwards.")
    vehicle_in: Count = Field(0, description="Vehicles read going in.")
    vehicle_out: Count = Field(0, description="Vehicles read going out.")
    vehicle_unknown: Count = Field(0, description="Vehicles read on a camera without a gate line.")


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


class ReceiverReport(BaseModel):
    """A panic receiver's state: a receiver that is down is retried with backoff, like a camera."""

    model_config = ConfigDict(extra="ignore")
    connected: bool | None = Field(None, description="Listening: port open, broker logged in, server bound.")
    reconnects: Count | None = Field(None, description="Times it came back after being down, since start.")
    error: ShortText | None = Field(None, description="Why it is down (null while connected).")
    down_since: Timestamp | None = Field(None, description="The box's clock when it went down (null while up).")


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
    panic_receivers: dict[Name, ReceiverReport] = Field(
        default_factory=dict, max_length=64, description="Per panic receiver (`serial:/dev/ttyUSB0`, `mqtt:…`)."
    )
    passages: dict[Name, PassageCounts] = Field(
        default_factory=dict, max_length=64, description="Per camera: people and vehicles in and out since start."
    )


# --- for other tools on the broker (opt-in: `integrations`) ---------------------------------------

TopicName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^#+\x00]+$")]  # no wildcards
Template = Annotated[str, Field(max_length=500)]


class HaDevice(BaseModel):
    """The Home Assistant device every entity of one box belongs to."""

    model_config = ConfigDict(extra="forbid")
    identifiers: list[Annotated[str, Field(max_length=160)]] = Field(
        min_length=1, max_length=4, description="Stable ids of the box: `gatebox_<site>_<box>`."
    )
    name: ShortText = Field(description="Shown in Home Assistant: `gatebox <site>/<box>`.")
    manufacturer: ShortText = Field("gatebox", description="Who makes it.")
    model: ShortText = Field("gate box", description="What it is.")
    sw_version: ShortText | None = Field(None, description="The box's software version.")


class HaOrigin(BaseModel):
    """What published the discovery config (Home Assistant logs it)."""

    model_config = ConfigDict(extra="forbid")
    name: ShortText = Field("gatebox", description="The publishing software.")
    sw_version: ShortText | None = Field(None, description="Its version.")


class HaComponent(BaseModel):
    """One entity in a device discovery config: where its state is and how to read it."""

    model_config = ConfigDict(extra="forbid")
    platform: Literal["binary_sensor", "sensor"] = Field(description="The entity's kind in Home Assistant.")
    unique_id: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] = Field(
        description="Stable across restarts: `gatebox_<site>_<box>_<what>`."
    )
    name: ShortText = Field(description="The entity's name within the device.")
    state_topic: TopicName = Field(description="One of the box's own topics.")
    value_template: Template | None = Field(None, description="Jinja template picking the state from the JSON.")
    json_attributes_topic: TopicName | None = Field(None, description="Where its attributes come from.")
    json_attributes_template: Template | None = Field(None, description="Template picking them from the JSON.")
    device_class: ShortText | None = Field(None, description="Home Assistant device class, e.g. `connectivity`.")
    payload_on: ShortText | None = Field(None, description="binary_sensor: the state payload meaning on.")
    payload_off: ShortText | None = Field(None, description="binary_sensor: the state payload meaning off.")
    unit_of_measurement: ShortText | None = Field(None, description="sensor: the value's unit.")
    state_class: Literal["measurement"] | None = Field(None, description="sensor: kept as statistics.")
    entity_category: Literal["diagnostic"] | None = Field(None, description="Shown among the device's diagnostics.")
    availability_topic: TopicName | None = Field(
        None, description="The box's availability topic: the entity is unavailable while the box is offline."
    )
    payload_available: ShortText | None = Field(None, description="Availability payload while connected.")
    payload_not_available: ShortText | None = Field(None, description="Availability payload once the box is gone.")


class HaDeviceDiscovery(BaseModel):
    """`<discovery_prefix>/device/<site>/<box>/config` (retained; `integrations.home_assistant`): Home
    Assistant's device discovery: the box's availability, each camera and the last alert, as entities of one
    device (Home Assistant 2024.11 or later). Entities other than availability are unavailable while the box
    is offline."""

    model_config = ConfigDict(extra="forbid")
    device: HaDevice = Field(description="The box.")
    origin: HaOrigin = Field(default_factory=HaOrigin, description="The software publishing this.")
    components: dict[Annotated[str, Field(max_length=200)], HaComponent] = Field(
        max_length=70, description="The entities, keyed by their unique ids."
    )


class EventSummary(BaseModel):
    """One alert as a Frigate-style event (`before` / `after` in `AlertEvent`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    id: EventId = Field(description="The alert's event id.")
    camera: Slug = Field(description="The camera that saw it.")
    label: Literal["person", "car"] = Field(description="What was seen: a face (`person`) or a plate (`car`).")
    sub_label: ShortText | None = Field(None, description="Who or what: the subject's name, else its id.")
    list: Slug = Field(description="The list the subject is on.")
    subject_id: Annotated[str, Field(min_length=1, max_length=256)] = Field(description="The subject's id in it.")
    kind: Literal["face_match", "elder_leaving", "plate_match"] = Field(description="The alert's kind.")
    score: float | None = Field(None, ge=0, le=1, description="The alert's match score (the raising event only).")
    start_time: Timestamp = Field(description="When it was seen (the alert's `ts`), seconds since the epoch.")
    end_time: Timestamp | None = Field(None, description="When the centre closed it; null while open.")
    state: Literal["new", "acked", "closed"] = Field(description="Where the centre's operators have it.")
    acked_by: ShortText | None = Field(None, description="The operator who acknowledged or closed it.")


class AlertEvent(BaseModel):
    """`<prefix>/<site>/<box>/events` (`integrations.events`), after Frigate's `frigate/events`: `new` when an
    alert is raised, `update` when the centre acknowledges it, `end` when the centre closes it."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["new", "update", "end"] = Field(description="What happened to the alert.")
    before: EventSummary = Field(description="The alert before it (`new`: the same as `after`).")
    after: EventSummary = Field(description="The alert now.")
