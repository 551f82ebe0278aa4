"""The centre's configuration (`config/centre.yaml`): one pydantic tree loaded from YAML, apart from
the box's (`edge.config`).

Every field carries a description, so `config/centre-example.yaml`, the docs and the validation
errors all come from one place. Unknown fields are errors (`extra="forbid"`). A file may also hold a
box's sections (one machine running both, as the demo does): the centre leaves those to the box
(`edge.protocol.config_file`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from centre.database import DatabaseLocation, is_postgres
from edge.protocol.config_file import BOX_RECOGNITION_KEYS, BOX_SECTIONS, load_config_file, render_example
from edge.protocol.embedding import EmbedderKind, OnnxEmbedderConfig
from edge.protocol.lists import BUILT_IN_LIST_KINDS, ListKind, names_with_kinds
from edge.protocol.logs import LoggingConfig
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.wire import Slug

DEFAULT_CONFIG_PATH = Path("/etc/gatebox-centre/centre.yaml")
CONFIG_ENV = "GATEBOX_CENTRE_CONFIG"
Origin = Annotated[str, Field(pattern=r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$", max_length=300)]
BoxKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}$")]  # `site/box_id`
DEFAULT_LISTS_DIR = Path("/var/lib/gatebox-centre/lists")
PLAN_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".webp")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchThresholds(StrictModel):
    """The distances a box decides a face match by (its `recognition.match_distance` and
    `strong_distance`, or the list's `recognition.operating_points` entry): the console explains an
    alert's distance against them."""

    match_distance: float = Field(
        gt=0, lt=2, description="The box counts a face for a subject below this distance.", examples=[0.54]
    )
    strong_distance: float = Field(
        gt=0, lt=2, description="At or below this distance one view of the face decides on its own.", examples=[0.40]
    )

    @model_validator(mode="after")
    def _strong_is_closer(self) -> MatchThresholds:
        if self.strong_distance > self.match_distance:
            raise ValueError("strong_distance must be at most match_distance")
        return self


# The boxes' built-in thresholds (dlib distances; edge/config.py `RecognitionConfig` and
# `DEFAULT_OPERATING_POINTS`; tests/centre/test_console_duty.py checks they stay the same).
BOX_MATCH_THRESHOLDS = MatchThresholds(match_distance=0.54, strong_distance=0.40)
BOX_LIST_MATCH_THRESHOLDS = {
    "missing_elders": MatchThresholds(match_distance=0.56, strong_distance=0.45),
    "watchlist": MatchThresholds(match_distance=0.54, strong_distance=0.40),
}


class SitePlan(StrictModel):
    """A site's plan drawn under its gates on the console's map: an image and the latitudes and
    longitudes of its edges (WGS84), so gates at their lat/lon land on it. No tiles are fetched."""

    image: Path = Field(
        description="The plan: a PNG, JPEG, WebP or SVG file the console can read.",
        examples=["/etc/gatebox-centre/plans/maple-court.png"],
    )
    north: float = Field(ge=-90, le=90, description="Latitude of the image's top edge.", examples=[31.2320])
    south: float = Field(ge=-90, le=90, description="Latitude of the image's bottom edge.", examples=[31.2290])
    west: float = Field(ge=-180, le=180, description="Longitude of the image's left edge.", examples=[121.4720])
    east: float = Field(ge=-180, le=180, description="Longitude of the image's right edge.", examples=[121.4760])

    @model_validator(mode="after")
    def _bounds_are_a_box(self) -> SitePlan:
        if self.north <= self.south or self.east <= self.west:
            raise ValueError("a plan's bounds need north > south and east > west")
        if self.image.suffix.lower() not in PLAN_SUFFIXES:
            raise ValueError(f"a plan image is one of {', '.join(PLAN_SUFFIXES)}, not {self.image.name!r}")
        return self


class GatePosition(StrictModel):
    """Where a box's gate is, when its alerts do not say (its `box.lat`/`box.lon` unset) or say wrong."""

    lat: float = Field(ge=-90, le=90, description="Latitude (WGS84).", examples=[31.2304])
    lon: float = Field(ge=-180, le=180, description="Longitude (WGS84).", examples=[121.4742])
    gate: str | None = Field(None, max_length=100, description="The gate's name on the map (default: the box's).")


class ConsoleConfig(StrictModel):
    """The operators' console and the centre's receivers (`console:`; `centre:` in files written
    before the centre had a config of its own)."""

    host: str = Field("127.0.0.1", description="Address the console listens on (put HTTPS in front for the LAN).")
    port: int = Field(8080, ge=1, le=65535, description="Port the console listens on.")
    db: DatabaseLocation = Field(
        Path("/var/lib/gatebox-centre/centre.sqlite3"),
        description="The centre's database (--db): an SQLite file (the embedded default, one console), or a "
        "PostgreSQL URL, postgresql://user[:password]@host:port/database, that several console workers share "
        "(README, Scaling out).",
    )
    lists_dir: Path | None = Field(
        None,
        description="Where the console keeps the list bundles it published (each the base of the next version). "
        "Default: `lists` beside an SQLite `db`, /var/lib/gatebox-centre/lists with PostgreSQL; workers on "
        "several machines need it on a shared mount.",
    )
    share_group: Slug | None = Field(
        None,
        description="Several console workers behind one address: give them all this MQTT shared-subscription "
        "group and the broker hands each message from the boxes to one of them ($share/<group>/...), so each "
        "is stored and confirmed once, not once per worker. Needs a PostgreSQL `db` they share. Unset: one "
        "console receives everything.",
    )
    signing_key: Path | None = Field(
        None, description="The centre's Ed25519 private key, for signed acks and lists (default $GATEBOX_CENTRE_KEY)."
    )
    session_hours: float = Field(12.0, gt=0, description="An operator stays logged in this long.")
    secure_cookie: bool = Field(False, description="Send the session cookie over HTTPS only (behind a TLS proxy).")
    silent_after_s: float = Field(
        90.0, gt=0, description="A box not heard from for this long is shown as silent (heartbeats every 30 s)."
    )
    max_upload_mb: int = Field(
        50, ge=1, description="Largest list upload accepted: the whole request (photo zip or plate CSV, meta CSV)."
    )
    allowed_origins: list[Origin] = Field(
        default_factory=list,
        description="Where the page may also be served from, as scheme://host[:port] (the HTTPS proxy's address, "
        "e.g. https://centre.example); state-changing requests from any other origin than these and the "
        "console's own address are refused.",
    )
    ack_resend_after_s: float = Field(
        60.0, gt=0, description="An ack or close the box has not confirmed after this long may be sent again."
    )
    client_id: Slug = Field(
        "gatebox-centre-console",
        description="The console's MQTT client id, unique per console: its session persists, so what boxes send "
        "while it restarts waits at the broker.",
    )
    closed_snapshot_days: float = Field(
        30.0, ge=0, description="Face snapshots of closed events are deleted this long after the event (0: at once)."
    )
    record_client_id: Slug = Field(
        "gatebox-centre-record",
        description="`gatebox centre record`'s MQTT client id: its session persists, so what boxes send while it "
        "is down waits at the broker.",
    )
    max_message_kb: int = Field(
        512,
        ge=16,
        le=64 * 1024,
        description="A message from a box larger than this is refused before it is parsed (an alert's face is a "
        "few kB, a panic's camera view at most ~330 kB). Keep the broker's `message_size_limit` at or above it.",
    )
    match_thresholds: MatchThresholds = Field(
        BOX_MATCH_THRESHOLDS,
        description="The boxes' `recognition.match_distance` and `strong_distance` (dlib): the console shows each "
        "face alert's distance as a strong (at or below strong_distance), good (in the closer half of the way to "
        "match_distance) or weak (in the farther half) match. Keep them the boxes'; with `recognition.embedder: "
        "onnx` the `recognition.onnx` thresholds are used instead, as the boxes do.",
    )
    list_match_thresholds: dict[Slug, MatchThresholds] = Field(
        default_factory=lambda: {name: point.model_dump() for name, point in BOX_LIST_MATCH_THRESHOLDS.items()},
        validate_default=True,
        description="Per list, the boxes' `recognition.operating_points` distances over `match_thresholds` (the "
        "built-in entries are the boxes' built-in ones).",
    )
    group_window_s: float = Field(
        600.0,
        ge=0,
        description="Alerts on one subject from one box, each within this many seconds of the one before, are "
        "one card with a count on the page (one pass at the gate); 0: every alert its own card.",
    )
    site_plans: dict[Slug, SitePlan] = Field(
        default_factory=dict,
        description="Per site, a plan image and its bounds drawn under the gates on the console's map; a site "
        "without one is drawn as a plain vector view fitted to its gates. Nothing is fetched from a tile server.",
    )
    gate_positions: dict[BoxKey, GatePosition] = Field(
        default_factory=dict,
        description="Per box (`site/box_id`), where its gate is on the map; otherwise the lat/lon its latest alert "
        "or panic carried (`box.lat`, `box.lon` in the box's config).",
    )

    @property
    def lists_folder(self) -> Path:
        """`lists_dir`, or its default."""
        if self.lists_dir is not None:
            return self.lists_dir
        return DEFAULT_LISTS_DIR if is_postgres(self.db) else Path(self.db).parent / "lists"

    @model_validator(mode="after")
    def _workers_share_a_database(self) -> ConsoleConfig:
        if self.share_group is not None and not is_postgres(self.db):
            raise ValueError("share_group needs a PostgreSQL `db` (postgresql://...): workers store into one database")
        return self


class EmbeddingConfig(StrictModel):
    """The face embedder lists are built with: it must be the boxes' (`recognition.embedder` and, for
    `onnx`, the same model file), or the boxes refuse the list."""

    embedder: EmbedderKind = Field(
        "dlib",
        description="Face embedder the boxes use: `dlib` (dlib's 128-d ResNet) or `onnx` (the model under `onnx`).",
    )
    onnx: OnnxEmbedderConfig | None = Field(None, description="The ONNX embedder, used with `embedder: onnx`.")

    @model_validator(mode="before")
    @classmethod
    def _matching_is_the_boxes(cls, data: Any) -> Any:
        """A file shared with a box holds its matching thresholds here too: the box's to read."""
        if isinstance(data, dict):
            data = {key: value for key, value in data.items() if key not in BOX_RECOGNITION_KEYS}
        return data

    @model_validator(mode="after")
    def _onnx_has_a_model(self) -> EmbeddingConfig:
        if self.embedder == "onnx" and self.onnx is None:
            raise ValueError("embedder: onnx needs an `onnx:` section naming the model file")
        return self


class CentreConfig(StrictModel):
    broker: BrokerConfig = Field(
        default_factory=BrokerConfig, description="The centre's MQTT broker (its own login, e.g. `centre`)."
    )
    console: ConsoleConfig = Field(default_factory=ConsoleConfig, description="The console and the receivers.")
    lists: dict[Slug, ListKind] = Field(
        default_factory=lambda: dict(BUILT_IN_LIST_KINDS),
        description="Lists the centre builds and publishes, each with its kind, as the boxes have them (their "
        "`lists`); the console offers these. A `plates` list is built from a plate CSV, any other from photos; "
        "the console shows alerts of `urgent` and `leaving-only` lists as urgent. A plain list of names gives the "
        "shipped names their built-in kinds (these below) and any other name `alert`.",
    )
    recognition: EmbeddingConfig = Field(
        default_factory=EmbeddingConfig, description="The embedder face lists are built with (the boxes')."
    )
    models_dir: Path | None = Field(
        None, description="Folder holding the verified model files (default: the installation's models/)."
    )
    logging: LoggingConfig = Field(
        default_factory=LoggingConfig, description="Logs (stderr; the journal under systemd)."
    )

    def match_thresholds(self, list_name: str) -> MatchThresholds:
        """The distances the boxes decide a face on `list_name` by: the ONNX embedder's own for every list
        (as `RecognitionConfig.with_embedder_thresholds` does on the box), else the list's, else the default."""
        if self.recognition.embedder == "onnx" and self.recognition.onnx is not None:
            onnx = self.recognition.onnx
            # Not validated again: the box takes these as they are, whatever their order.
            return MatchThresholds.model_construct(
                match_distance=onnx.match_distance, strong_distance=onnx.strong_distance
            )
        return self.console.list_match_thresholds.get(list_name, self.console.match_thresholds)

    # Configs from before list kinds name the lists only (the box's config reads them the same way).
    _names_take_their_built_in_kind = field_validator("lists", mode="before")(names_with_kinds)

    @model_validator(mode="before")
    @classmethod
    def _console_was_centre(cls, data: Any) -> Any:
        """`centre:` is what the console section was called while the centre's settings were a
        section of the box's config: such files still load."""
        if isinstance(data, dict) and "centre" in data:
            if "console" in data:
                raise ValueError("`centre:` is the old name of `console:`; keep one of them (console)")
            data = {("console" if key == "centre" else key): value for key, value in data.items()}
        return data


def config_path(given: Path | None) -> Path | None:
    """The config file to read: `--config`, else $GATEBOX_CENTRE_CONFIG, else /etc/gatebox-centre/centre.yaml
    if there is one; None: built-in defaults."""
    if given is not None:
        return given
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(path: Path | None) -> CentreConfig:
    """Load and validate the centre's YAML config; `None` means built-in defaults. A box's sections
    in the same file are left to the box."""
    if path is None:
        return CentreConfig()
    return load_config_file(path, CentreConfig, yaml.safe_load, leave=BOX_SECTIONS)


def render_example_yaml() -> str:
    """`config/centre-example.yaml`: every field with its description and default."""
    header = [
        "# gatebox centre configuration: every field, its meaning and its default.",
        "# Generated from centre/config.py by `gatebox-centre config-example`; do not edit by hand.",
    ]
    return render_example(CentreConfig, header, yaml.safe_dump)
