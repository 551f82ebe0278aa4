"""The box's configuration: one pydantic tree loaded from YAML.

Every field carries a description, so `config/example.yaml`, the docs and the validation
errors all come from one place. Unknown fields are errors (`extra="forbid"`): a typo in a
threshold must not silently fall back to the default on a gate box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.protocol.config_file import CENTRE_SECTIONS, load_config_file, render_example
from edge.protocol.embedding import EmbedderKind, ExecutionProvider, OnnxEmbedderConfig, cpu_only
from edge.protocol.lists import BUILT_IN_LIST_KINDS, ListKind, names_with_kinds
from edge.protocol.logs import LoggingConfig
from edge.protocol.mqtt import BrokerConfig, TlsConfig
from edge.protocol.wire import Slug

PACKAGE_ROOT = Path(__file__).resolve().parent
DEFAULT_MODELS_DIR = PACKAGE_ROOT.parent / "models"
DEFAULT_CONFIG_PATH = Path("/etc/gatebox/gatebox.yaml")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoxConfig(StrictModel):
    site: Slug = Field("demo-site", description="Site (residential community) this box guards; part of every topic.")
    box_id: Slug = Field("gate-01", description="This box's id, unique within the site; part of every topic.")
    site_name: str | None = Field(None, max_length=200, description="Human name of the site, sent with alerts.")
    gate: str | None = Field(None, max_length=100, description="Which gate of the site, sent with alerts.")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude of the gate (WGS84), sent with alerts.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude of the gate (WGS84), sent with alerts.")
    grid_cell: str | None = Field(None, max_length=64, description="The city's grid-cell code for dispatch.")


class ReconnectConfig(StrictModel):
    initial_backoff_s: float = Field(1.0, gt=0, description="First wait before reopening a lost camera.")
    max_backoff_s: float = Field(30.0, gt=0, description="Longest wait between reopen attempts (doubling backoff).")


class GateLineConfig(StrictModel):
    start: tuple[float, float] = Field(
        description="One end of the gate line, (x, y) as fractions of the frame (0-1).", examples=[(0.0, 0.7)]
    )
    end: tuple[float, float] = Field(
        description="The other end of the gate line, (x, y) as fractions of the frame.", examples=[(1.0, 0.7)]
    )
    outside: tuple[float, float] = Field(
        description="Any point on the outer side of the line (x, y fractions): crossing towards it is leaving.",
        examples=[(0.5, 1.0)],
    )
    margin: float = Field(
        0.02, ge=0, lt=0.5, description="A face must get this far (fraction of the frame) past the line to count."
    )


class CameraConfig(StrictModel):
    name: Slug = Field(description="Camera name used in alerts and logs.", examples=["main_gate"])
    url: str = Field(
        description="rtsp://, http(s)://, tcp:// stream URL; `usb:N` for /dev/videoN; or a video file path.",
        examples=["rtsp://user:pass@192.0.2.10:554/stream1"],
    )
    open_timeout_s: float = Field(5.0, gt=0, description="Give up opening the stream after this long.")
    read_timeout_s: float = Field(5.0, gt=0, description="A stream that delivers no frame for this long is lost.")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, description="Backoff when lost.")
    hw_decode: bool = Field(
        False, description="Ask FFmpeg for hardware video decoding (V4L2 M2M on a Pi, NVDEC on a Jetson) when present."
    )
    gate_line: GateLineConfig | None = Field(
        None, description="The line people cross to leave; needed for `at_risk_elders` (elder-leaving) alerts."
    )


class MotionConfig(StrictModel):
    enabled: bool = Field(
        True,
        description="Detect faces only in frames and regions that changed (false: every frame, everywhere).",
    )
    width: int = Field(160, ge=32, le=640, description="Width of the grey copy the background model runs on.")
    threshold: float = Field(
        12.0, gt=0, lt=255, description="Grey-level change (0-255) that counts a low-res pixel as moving."
    )
    background_alpha: float = Field(
        0.05, gt=0, le=1, description="How fast the background absorbs change (per frame, running average)."
    )
    min_area_fraction: float = Field(
        0.002, ge=0, lt=1, description="Moving blobs smaller than this fraction of the frame are noise."
    )
    region_padding: float = Field(
        0.15, ge=0, le=1, description="Detection regions are grown by this fraction of the frame width."
    )


class LinkConfig(StrictModel):
    outbox_budget_mb: float = Field(
        256,
        gt=0,
        description="Disk budget of the outbox; past it the oldest low-priority messages are dropped "
        "(counted in the heartbeat). Alerts and panics are never dropped.",
    )
    resend_after_s: float = Field(
        30.0, gt=0, description="An alert the centre has not confirmed (receipt) is sent again after this long."
    )
    resend_max_s: float = Field(
        300.0,
        gt=0,
        description="The wait before sending an unconfirmed alert again doubles with each send, from "
        "`resend_after_s` up to this (a reconnect still sends everything unconfirmed at once). Fixed-pace "
        "resends behind a district broker cut from the centre pile up there and swamp the centre when the "
        "link returns (README, Scaling out).",
    )
    max_inflight: int = Field(100, ge=1, le=65535, description="QoS 1 messages awaiting PUBACK at once.")
    max_inbound_bytes: int = Field(
        65536, ge=1024, description="Receipts, commands or list manifests larger than this are rejected unread."
    )
    centre_public_key: Path | None = Field(
        None,
        description="Path of a PEM file holding the centre's Ed25519 public key (`centre_ed25519.pub.pem`, "
        "written by `gatebox centre keygen`), not the key text itself; without it the box refuses every "
        "command and list from the centre.",
        examples=["/etc/gatebox/centre_ed25519.pub.pem"],
    )
    heartbeat_interval_s: float = Field(30.0, gt=0, description="How often `run` publishes its heartbeat.")
    list_timeout_s: float = Field(
        120.0,
        gt=0,
        description="A list bundle whose chunks are not all in after this long is refused (truncated); chunks "
        "that arrived without a manifest are dropped after this long too.",
    )
    max_list_mb: float = Field(
        256,
        gt=0,
        le=1024,
        description="Largest list bundle accepted: a manifest announcing more is refused at once. Chunks "
        "waiting for their manifest are held up to this much in all.",
    )

    @field_validator("centre_public_key", mode="before")
    @classmethod
    def _a_path_not_the_key_text(cls, value: object) -> object:
        # Installers paste the key itself here; as a Path it would only fail later as "no such file".
        if isinstance(value, str) and ("BEGIN" in value or "\n" in value):
            raise ValueError("give the path of the PEM file (e.g. /etc/gatebox/centre_ed25519.pub.pem), "
                             "not the key text")  # fmt: skip
        return value


class AlertsConfig(StrictModel):
    snapshot_retention_days: float = Field(
        30.0, gt=0, description="Face snapshots kept on the box are deleted when the alert is closed, or after this."
    )


class PanicDevice(StrictModel):
    device_id: Slug = Field(description="The button's id as its receiver reports it.", examples=["btn-0042"])
    household: str | None = Field(None, max_length=200, description="Who lives there (sent with the panic).")
    address: str | None = Field(None, max_length=200, description="Building, flat and room.")
    contact: str | None = Field(None, max_length=200, description="Who to call (relative, carer).")
    camera: str | None = Field(
        None, description="The camera nearest the device: named in the panic, whose current view goes with it."
    )
    heartbeat_interval_s: float | None = Field(
        None, gt=0, description="The device reports in this often; silent for twice this raises device_offline."
    )


class GpioReceiverConfig(StrictModel):
    device_id: Slug = Field(description="The registered device wired to this input.", examples=["btn-0042"])
    pin: int | str = Field(
        description="GPIO pin (BCM number or gpiozero pin name, e.g. 17 or 'GPIO17').", examples=[17]
    )
    pull_up: bool = Field(True, description="Internal pull-up; the button shorts the pin to ground (active-low).")
    bounce_s: float = Field(0.1, ge=0, description="Edges closer together than this are contact bounce.")
    hold_s: float = Field(3.0, gt=0, description="Held this long: a long press (forwarded as such).")


class SerialReceiverConfig(StrictModel):
    port: str = Field(description="Serial device of the radio receiver.", examples=["/dev/ttyUSB0"])
    baudrate: int = Field(9600, description="Line speed.")


class HttpReceiverConfig(StrictModel):
    host: str = Field("127.0.0.1", description="Address to listen on (loopback, or the LAN for IP buttons).")
    port: int = Field(8088, ge=1, le=65535, description="Port to listen on.")
    token_file: Path = Field(
        description="File holding the bearer token buttons must send.", examples=["/etc/gatebox/panic-token"]
    )
    max_body_bytes: int = Field(
        4096, ge=64, le=65536, description="Larger requests are refused (413), whatever Content-Length says."
    )
    max_connections: int = Field(
        16,
        ge=1,
        le=256,
        description="Connections served at once (one thread each). When all are taken, the one idle longest "
        "without a complete request is closed to make room: idle sockets cannot lock a button out.",
    )
    idle_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="A connection that sends nothing for this long is closed; a request body not in within "
        "this long is refused (408).",
    )


class MqttReceiverConfig(StrictModel):
    host: str = Field("127.0.0.1", description="The local broker the radio bridge publishes to.")
    port: int = Field(1883, ge=1, le=65535, description="Its port.")
    topic_prefix: str = Field("panic", description="Signals arrive on `<topic_prefix>/<device_id>`.")
    username: str | None = Field(None, description="User name at that broker, so it need not allow anonymous clients.")
    password_file: Path | None = Field(None, description="File holding that user's password (kept out of the YAML).")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS to that broker (as `broker.tls`).")


class PanicConfig(StrictModel):
    devices: list[PanicDevice] = Field(default_factory=list, description="Registered panic buttons.")
    coalesce_window_s: float = Field(
        30.0, ge=0, description="Presses of one device within this window are one panic event (with a count)."
    )
    low_battery_percent: int = Field(20, ge=0, le=100, description="A device reporting less raises low_battery.")
    gpio: list[GpioReceiverConfig] = Field(default_factory=list, description="Buttons wired to the box's GPIO.")
    serial: list[SerialReceiverConfig] = Field(
        default_factory=list, description="Serial radio receivers; lines `DEVICE_ID,EVENT[,BATTERY]`."
    )
    http: HttpReceiverConfig | None = Field(None, description="HTTP endpoint for IP buttons (POST /panic).")
    mqtt: MqttReceiverConfig | None = Field(None, description="A local MQTT topic fed by a Zigbee/433 MHz bridge.")
    reconnect: ReconnectConfig = Field(
        default_factory=lambda: ReconnectConfig(initial_backoff_s=1.0, max_backoff_s=10.0),
        description="Backoff for a receiver that is down (radio unplugged, bridge broker down, port taken): "
        "it is retried, reported in the heartbeat's `panic_receivers`, and stops nothing else.",
    )


class DetectorConfig(StrictModel):
    kind: Literal["retinaface", "dlib_hog", "dlib_cnn"] = Field(
        "retinaface",
        description="Face detector backend: `retinaface` (ONNX, ~9 ms at 640 px, finds small and turned faces), "
        "`dlib_hog` (~90 ms at 960 px, frontal faces only) or `dlib_cnn` (dlib's CNN; only where dlib has "
        "CUDA). Chosen by measurement: docs/benchmarks.md.",
    )
    detect_width: int | None = Field(
        None,
        ge=160,
        le=3840,
        description="Frames are downscaled to this width before detection (default: 640 for retinaface, "
        "960 for dlib_hog).",
    )
    upsample: int = Field(1, ge=0, le=2, description="dlib_hog only: upsampling passes (1 finds faces from ~40 px).")
    providers: list[ExecutionProvider] = Field(
        default_factory=cpu_only,
        description="retinaface only: ONNX Runtime execution providers in order of preference (CPU is the fallback); "
        "the box logs which it got.",
    )
    min_confidence: float = Field(0.8, gt=0, lt=1, description="retinaface only: minimum face score.")
    every_n_frames: int = Field(
        3, ge=1, description="Run the detector on every n-th frame; tracks carry faces across the others."
    )


class TrackingConfig(StrictModel):
    iou_threshold: float = Field(0.2, gt=0, lt=1, description="Minimum box overlap to continue a track.")
    max_missed: int = Field(
        4, ge=0, description="A track survives this many detection passes without its face before it ends."
    )
    max_size_ratio: float = Field(
        1.4,
        gt=1,
        description="A detection continues a track only if its width is within this ratio of the track's last "
        "(between two detection passes a face grew at most 18% on the crowd clip); overlap alone never does.",
    )
    scene_cut_correlation: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A frame whose grid cells correlate with the previous frame's below this (median) is a scene "
        "cut (camera moved, PTZ preset, an edit) and ends every track. Measured: consecutive frames of the shared "
        "clips >= 0.857 (0.738 with two frames dropped), 600 cuts between them <= 0.333.",
    )


class OperatingPoint(StrictModel):
    """How much evidence a track needs before it alerts for a subject of one list; unset fields take the
    `recognition` defaults."""

    match_distance: float | None = Field(
        None, gt=0, lt=1.5, description="A sample counts for a subject when its distance is below this."
    )
    strong_distance: float | None = Field(
        None, gt=0, lt=1.5, description="A single sample this close (with the margin) decides on its own."
    )
    min_matching_frames: int | None = Field(
        None, ge=1, description="Samples of the track that must count for the subject within the evidence window."
    )
    evidence_window: int | None = Field(None, ge=1, description="The track's last this many samples are weighed.")
    min_margin: float | None = Field(
        None,
        ge=0,
        description="A sample counts only if the next-nearest other subject is at least this much farther.",
    )


# Per-list operating points, chosen on measured distances (README "Recognition policy"): a missing
# elder's sighting is confirmed by an operator, so it favours recall; a watchlist alert must be right.
DEFAULT_OPERATING_POINTS: dict[str, dict[str, float | int]] = {
    "missing_elders": {"match_distance": 0.56, "strong_distance": 0.45, "min_matching_frames": 2,
                       "evidence_window": 8, "min_margin": 0.03},
    "watchlist": {"match_distance": 0.54, "strong_distance": 0.40, "min_matching_frames": 3,
                  "evidence_window": 6, "min_margin": 0.05},
}  # fmt: skip


class RecognitionConfig(StrictModel):
    # The defaults below are the operating point of every list without its own in `operating_points`
    # (the watchlist's: precision). dlib distances, measured (README "Recognition policy"):
    # - ../shared/data/faces/identities, 41 photos of 9 people taken on different days: genuine pairs
    #   0.24-0.61 (median 0.37), impostor pairs >= 0.63;
    # - the same photos as gate video (face shrunk to 30/40/60/90 px, blur, noise, JPEG) against the
    #   person's other photos: genuine medians 0.60/0.53/0.48/0.42, impostors >= 0.59 (5,816 pairs);
    # - the crowd clip (enrolled from one of its frames): strangers' faces >= 0.575 from the enrolled.
    match_distance: float = Field(
        0.54,
        gt=0,
        lt=1.5,
        description="A sample counts for a subject when its embedding distance is below this. Measured on gate-"
        "like 40/60/90 px faces of people photographed on other days: 53/91/95% of genuine samples below 0.54; "
        "no impostor sample below 0.59 (photos) or 0.575 (strangers on the crowd clip).",
    )
    strong_distance: float = Field(
        0.40,
        gt=0,
        lt=1.5,
        description="A single sample this close (and clear of every other subject) is enough evidence on its own: "
        "no impostor sample was measured below 0.575.",
    )
    min_matching_frames: int = Field(
        3,
        ge=1,
        description="Samples within the evidence window that must count for the same subject (and more than for "
        "any other) before the track alerts; a lone fluke sample never does.",
    )
    evidence_window: int = Field(
        6, ge=1, description="A track's last this many samples are weighed (k of n: min_matching_frames of these)."
    )
    min_margin: float = Field(
        0.05,
        ge=0,
        description="A sample counts for a subject only if the next-nearest other subject is at least this much "
        "farther (ambiguous samples count for nobody); genuine samples measured >= 0.11 clear at >= 40 px.",
    )
    operating_points: dict[Slug, OperatingPoint] = Field(
        default_factory=lambda: {name: dict(point) for name, point in DEFAULT_OPERATING_POINTS.items()},
        validate_default=True,
        description="Per-list operating points over the defaults above: `missing_elders` favours recall (an "
        "operator confirms the sighting), `watchlist` precision. Entries given here replace the built-in entry of "
        "that list (`{}`: the defaults above); other lists keep theirs. Distances here are dlib's: with "
        "`embedder: onnx` every list takes the `onnx` thresholds (k of n, window and margin still apply).",
    )
    min_looks_per_second: float = Field(
        2.0,
        gt=0,
        description="Coverage floor: every undecided face in view is embedded at least this often for as long as "
        "it is visible (a first look side-on proves nothing). When the budget is short, every face is looked at "
        "less often, none is dropped.",
    )
    max_looks_per_second: float = Field(
        5.0,
        gt=0,
        description="The most often one face is embedded (a clearly better view or a promising match may use spare "
        "budget up to this).",
    )
    embeddings_per_second: float = Field(
        12.0,
        gt=0,
        description="Per-camera CPU budget of face embeddings (~60 ms each on one core), on the camera's clock, "
        "shared round-robin between the faces in view (least recently looked at first).",
    )
    max_embeddings_per_pass: int = Field(
        3,
        ge=1,
        description="Faces embedded per detection pass at most: keeps the embedding worker, and so alert latency, "
        "from falling behind when a crowd arrives.",
    )
    min_quality_gain: float = Field(
        0.25,
        ge=0,
        description="A view whose face quality (size x sharpness x frontal pose) beats the track's best so far by "
        "this fraction jumps the queue.",
    )
    embedding_workers: int = Field(
        2,
        ge=0,
        le=16,
        description="Processes that embed faces beside the pipeline (dlib holds the GIL, so threads would not "
        "help); 0 embeds in the pipeline's own thread.",
    )
    subject_cooldown_s: float = Field(
        60.0,
        ge=0,
        description="Once a subject alerted on a camera, a new track of the same subject within this time "
        "(e.g. the track broke behind an occluder) does not alert again: one alert per person per pass.",
    )
    min_face_px: int = Field(40, ge=16, description="Faces narrower than this (in the source frame) are ignored.")
    at_risk_hours: str | None = Field(
        None,
        pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
        description="`HH:MM-HH:MM` (box local time, both minutes included, may wrap midnight): alert on at-risk "
        "elders leaving only then; always when unset.",
    )
    embedder: EmbedderKind = Field(
        "dlib",
        description="Face embedder: `dlib` (dlib's 128-d ResNet, Euclidean distance; `match_distance` and "
        "`strong_distance` above are its thresholds) or `onnx` (a model you supply, set under `onnx`, with "
        "its own cosine-distance thresholds there). Enrolled faces and centre lists must be made with the "
        "same embedder: the box refuses to start on a gallery, and refuses a list, made with another.",
    )
    onnx: OnnxEmbedderConfig | None = Field(None, description="The ONNX embedder, used with `embedder: onnx`.")

    @model_validator(mode="after")
    def _onnx_has_a_model(self) -> RecognitionConfig:
        if self.embedder == "onnx" and self.onnx is None:
            raise ValueError("embedder: onnx needs an `onnx:` section naming the model file")
        return self

    def with_embedder_thresholds(self) -> RecognitionConfig:
        """This config with `match_distance` and `strong_distance` of the configured embedder, so the
        matching and decision stages need not know which embedder made the distances."""
        if self.embedder == "dlib" or self.onnx is None:
            return self
        # Per-list distances are dlib (Euclidean) figures: meaningless for cosine distances, so every
        # list takes the ONNX thresholds; its k of n, window and margin still apply.
        points = {
            name: point.model_copy(update={"match_distance": None, "strong_distance": None})
            for name, point in self.operating_points.items()
        }
        return self.model_copy(
            update={"match_distance": self.onnx.match_distance, "strong_distance": self.onnx.strong_distance,
                    "operating_points": points}
        )  # fmt: skip

    @field_validator("operating_points", mode="before")
    @classmethod
    def _over_the_built_in_points(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {**{name: dict(point) for name, point in DEFAULT_OPERATING_POINTS.items()}, **value}

    def operating_point(self, list_name: str) -> ResolvedOperatingPoint:
        """The evidence rule for subjects of `list_name`: its own entry over the defaults."""
        point = self.operating_points.get(list_name) or OperatingPoint()
        values = {name: getattr(point, name) for name in OperatingPoint.model_fields}
        return ResolvedOperatingPoint(**{k: getattr(self, k) if v is None else v for k, v in values.items()})

    @property
    def max_match_distance(self) -> float:
        """The farthest any list counts a sample: how far the gallery is searched."""
        points = [self.operating_point(name) for name in self.operating_points]
        return max([self.match_distance, self.strong_distance, *(p.match_distance for p in points)])


class ResolvedOperatingPoint(StrictModel):
    """An operating point with every value filled in (see `OperatingPoint`)."""

    match_distance: float
    strong_distance: float
    min_matching_frames: int
    evidence_window: int
    min_margin: float


class ObjectDetectorConfig(StrictModel):
    model: Path = Field(
        description="A YOLO-style person/vehicle ONNX model you supply.", examples=["/etc/gatebox/yolov8n.onnx"]
    )
    output_format: Literal["yolov8", "yolov5"] = Field("yolov8", description="The model's output layout.")
    input_size: tuple[int, int] = Field((640, 640), description="Model input width and height.")
    class_names: dict[int, str] = Field(
        default_factory=lambda: {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 5: "bus", 7: "truck"},
        description="Model class index -> name (COCO indices by default).",
    )
    classes: list[str] = Field(
        default_factory=lambda: ["person", "car", "motorcycle", "bus", "truck"], description="Names to keep."
    )
    min_confidence: float = Field(0.4, gt=0, lt=1, description="Detections below this score are dropped.")
    nms_iou: float = Field(0.45, gt=0, lt=1, description="Overlap above which the weaker box of a class is dropped.")
    providers: list[ExecutionProvider] = Field(
        default_factory=cpu_only, description="Execution providers in order of preference (CPU is the fallback)."
    )


class PlatesConfig(StrictModel):
    enabled: bool = Field(False, description="Find and read licence plates on the cameras, and match plate lists.")
    every_n_frames: int = Field(3, ge=1, description="Look for plates on every n-th frame (only where it moved).")
    max_width: int = Field(1280, ge=320, le=3840, description="Scenes wider than this are downscaled to find plates.")
    min_reads: int = Field(2, ge=1, description="Reads of one plate track that must agree before it counts.")
    max_fuzzy_distance: float = Field(
        1.0,
        ge=0,
        description="A listed plate matches a read this far off (confusable characters count 0.5, "
        "others 1); 0 for exact matches only. Fuzzy hits are marked in the alert.",
    )
    cooldown_s: float = Field(60.0, ge=0, description="The same plate does not alert again on a camera within this.")
    passages: bool = Field(
        False,
        description="Send a passage record (plate, colour, direction, time) for every vehicle read, listed "
        "or not, for the centre's access log.",
    )


class HomeAssistantConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Publish a retained Home Assistant device discovery config (availability, cameras, last alert) "
        "at every connect. The broker's ACL must let the box write `<discovery_prefix>/device/%u/config`.",
    )
    discovery_prefix: Slug = Field("homeassistant", description="Home Assistant's MQTT discovery prefix.")


class EventsTopicConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Publish Frigate-style alert events on `<prefix>/<site>/<box>/events`: `new` when raised, "
        "`update` when acknowledged, `end` when closed.",
    )


class IntegrationsConfig(StrictModel):
    home_assistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, description="Home Assistant MQTT discovery (opt-in)."
    )
    events: EventsTopicConfig = Field(
        default_factory=EventsTopicConfig, description="A Frigate-style `events` topic (opt-in)."
    )


class PeoplePassagesConfig(StrictModel):
    enabled: bool = Field(
        False, description="Count people: every person track crossing a camera's gate line is a passage (in/out)."
    )
    detector: Literal["motion", "hog", "onnx", "none"] = Field(
        "motion",
        description="How people are found where no face is seen (docs/benchmarks.md, 'Counting'): `motion` "
        "(what moves against the learned background, on every frame: a fixed camera that sees people on foot, "
        "from behind, turning, far or filling the frame; people walking close together count as one), `hog` "
        "(OpenCV's HOG people detector: only whole upright people over ~128 px tall at `detect_width`; it "
        "missed most people on the benchmark clips), `onnx` (the `objects` model's `person` class, when the "
        "deployment supplies one: people apart in a crowd, and a moving camera), `none` (faces only).",
    )
    every_n_frames: int = Field(
        3, ge=1, description="`hog`/`onnx`: run the person detector on every n-th frame (where it moved)."
    )
    detect_width: int = Field(
        640, ge=160, le=1920, description="Frames are downscaled to this width for the HOG person detector."
    )
    min_confidence: float = Field(0.5, ge=0, le=5, description="HOG only: minimum SVM score of a person box.")
    min_person_area: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="`motion` only: a moving blob smaller than this fraction of the frame is not a person "
        "(walking people's blobs on the benchmark clips: 5th percentile 0.07 %, median 0.33 %).",
    )
    rejoin_within_s: float = Field(
        2.0, ge=0, description="A person track that breaks and restarts within this long (and near) is one person."
    )
    rejoin_distance: float = Field(
        0.15, gt=0, le=1, description="... and this near (fraction of the frame width) to where the track broke."
    )
    snapshots: bool = Field(
        False,
        description="Privacy: send the person's face view at the line with each passage (off: counts and times only).",
    )
    snapshot_retention_days: float = Field(
        7.0, gt=0, description="Face views of passages are deleted after this long, on the box and at the centre."
    )


class PassagesConfig(StrictModel):
    people: PeoplePassagesConfig = Field(
        default_factory=PeoplePassagesConfig, description="People crossing the gate line (vehicles: `plates.passages`)."
    )


class GateboxConfig(StrictModel):
    box: BoxConfig = Field(default_factory=BoxConfig, description="Identity of this box.")
    cameras: list[CameraConfig] = Field(
        default_factory=list,
        description="Cameras watched by `gatebox run` (none by default; one shown here).",
    )
    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="Command centre MQTT broker.")
    link: LinkConfig = Field(default_factory=LinkConfig, description="Delivery to the centre: outbox, commands.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Alerts kept on the box.")
    integrations: IntegrationsConfig = Field(
        default_factory=IntegrationsConfig, description="Other tools on the broker: Home Assistant, Frigate events."
    )
    panic: PanicConfig = Field(default_factory=PanicConfig, description="Panic buttons relayed to the centre.")
    plates: PlatesConfig = Field(default_factory=PlatesConfig, description="Licence plates.")
    passages: PassagesConfig = Field(default_factory=PassagesConfig, description="Passages counted at the gate line.")
    objects: ObjectDetectorConfig | None = Field(
        None, description="A person/vehicle ONNX detector of your own; when set, plates are looked for in vehicles."
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gating before detection.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Face detection.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Face tracking.")
    recognition: RecognitionConfig = Field(default_factory=RecognitionConfig, description="Matching rules.")
    lists: dict[Slug, ListKind] = Field(
        default_factory=lambda: dict(BUILT_IN_LIST_KINDS),
        description="The lists faces (or plates) can be enrolled in, synced from the centre and matched against, "
        "each with its kind: `alert` (any sighting alerts), `urgent` (any sighting alerts, ahead of `alert` lists "
        "in the outbox), `leaving-only` (alerts, urgently, only when the person crosses the gate line outwards, "
        "within `recognition.at_risk_hours`) or `plates` (licence plates). A plain list of names gives the shipped "
        "names their built-in kinds (these below) and any other name `alert`.",
    )
    logging: LoggingConfig = Field(
        default_factory=LoggingConfig, description="Logs (stderr; the journal under systemd)."
    )
    data_dir: Path = Field(Path("/var/lib/gatebox"), description="Local list store and state (--data-dir).")
    models_dir: Path | None = Field(
        None, description="Folder holding the verified model files (default: the installation's models/)."
    )

    @property
    def models_path(self) -> Path:
        return self.models_dir or DEFAULT_MODELS_DIR

    # Configs from before list kinds name the lists only: what a list does came from its name then.
    _names_take_their_built_in_kind = field_validator("lists", mode="before")(names_with_kinds)

    def lists_of_kind(self, *kinds: ListKind) -> list[str]:
        """The configured lists of these kinds, in config order."""
        return [name for name, kind in self.lists.items() if kind in kinds]

    @model_validator(mode="after")
    def _unique_camera_names(self) -> GateboxConfig:
        names = [c.name for c in self.cameras]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"camera names must be unique; repeated: {', '.join(dupes)}")
        return self


def load_config(path: Path | None) -> GateboxConfig:
    """Load and validate the YAML config; `None` means built-in defaults. The centre's sections of a
    file shared with it are left to the centre."""
    if path is None:
        return GateboxConfig()
    return load_config_file(path, GateboxConfig, yaml.safe_load, leave=CENTRE_SECTIONS)


def render_example_yaml() -> str:
    """`config/example.yaml`: every field with its description and default, from the models above."""
    header = [
        "# gatebox configuration: every field, its meaning and its default.",
        "# Generated from edge/config.py by `gatebox config-example`; do not edit by hand.",
    ]
    return render_example(GateboxConfig, header, yaml.safe_dump)
