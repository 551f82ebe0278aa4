"""List bundles: how the centre's lists travel to the boxes (protocol in the README).

A bundle is a signed manifest plus a data blob cut into chunks. The manifest names the list,
its version (and, for a delta, the version it applies to), the number of chunks and the sha256 of
each, so one Ed25519 signature over the manifest covers every byte of the data.

Data blob: b"GBL1", a little-endian uint32 length, that many bytes of UTF-8 JSON metadata, then
the float32 little-endian embedding matrix (one row per face, `embedder.dim` columns). Metadata of a
full list: `{"entries": [ENTRY...], "embedder": EMBEDDER}`; of a delta: `{"add": [ENTRY...],
"remove": [subject_id...], "embedder": EMBEDDER}`. An ENTRY is `{subject_id, name, category,
priority, expires_at, embeddings, plate}` where `embeddings` is how many consecutive matrix rows are
its faces (0 for a plate entry, which has `plate` instead). EMBEDDER is `{id, dim}`: which embedder
made the rows (e.g. `dlib-resnet-v1`, 128; `onnx:<sha256 prefix of the model file>`, 512). It is
there whenever the data holds face rows; data without it and with face rows predates embedder ids
and is dlib's 128-d. Raw photos never travel.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import struct
from datetime import datetime
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.protocol.embedding import DLIB_EMBEDDER, EmbedderSpec

MAGIC = b"GBL1"
CHUNK_BYTES = 256 * 1024
MAX_CHUNKS = 4096  # 1 GiB of data in 256 KiB chunks; a box's `link.max_list_mb` may allow less
MAX_VERSION = 2**63 - 1  # versions are SQLite integers, at the centre and on the box
PLATE_PATTERN = r"^[A-Z0-9\u4e00-\u9fff]{4,10}$"  # normalised: upper case, no spaces or separators


class BundleError(ValueError):
    """A bundle that must not be applied: the message says why."""


class ListEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    subject_id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=32)
    priority: int = Field(0, ge=0, le=9)
    expires_at: datetime | None = None
    embeddings: int = Field(0, ge=0, le=64)  # face rows in the matrix; 0 for a plate entry
    plate: str | None = Field(None, pattern=PLATE_PATTERN)

    @model_validator(mode="after")
    def _face_or_plate(self) -> ListEntry:
        if (self.embeddings > 0) == (self.plate is not None):
            raise ValueError("an entry has either face embeddings or a plate, not both or neither")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_: Literal["gatebox.list/1"] = Field("gatebox.list/1", alias="schema")
    list: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    kind: Literal["full", "delta"]
    version: int = Field(ge=1, le=MAX_VERSION)
    base_version: int | None = Field(None, ge=1, le=MAX_VERSION)
    entries: int = Field(ge=0)
    size: int = Field(ge=0, le=MAX_CHUNKS * CHUNK_BYTES)
    # sha256 hex of each chunk, in order (`list` is a field name here)
    chunks: builtins.list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(min_length=1, max_length=MAX_CHUNKS)
    created_at: datetime

    @model_validator(mode="after")
    def _chunks_can_hold_the_data(self) -> Manifest:
        if self.size > len(self.chunks) * CHUNK_BYTES:
            raise ValueError(f"{len(self.chunks)} chunks of at most {CHUNK_BYTES} bytes cannot hold {self.size} bytes")
        return self

    def chunk_topic(self, prefix: str, index: int) -> str:
        return f"{prefix}/lists/{self.list}/{self.kind}/{self.version}/{index}"


class BundleEmbedder(BaseModel):
    """Which embedder made a bundle's face rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9:;._+-]{1,100}$")
    dim: int = Field(ge=1, le=4096)


class ListData(BaseModel):
    """Decoded data of a bundle."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    entries: list[ListEntry]  # full: the whole list; delta: the entries to add or replace
    remove: list[str] = []
    matrix: npt.NDArray[np.float32]  # rows follow the entries
    embedder: EmbedderSpec | None = None  # None: no face rows (a plate list, a delta that only removes)


def encode(
    entries: list[ListEntry],
    matrix: npt.NDArray[np.float32],
    remove: list[str] | None = None,
    embedder: EmbedderSpec = DLIB_EMBEDDER,
) -> bytes:
    """List data; `embedder` made the matrix rows (recorded when there are any)."""
    if sum(e.embeddings for e in entries) != len(matrix):
        raise ValueError("entries' embedding counts must add up to the matrix rows")
    key = "add" if remove is not None else "entries"
    meta: dict[str, object] = {key: [e.model_dump(mode="json") for e in entries]}
    if remove is not None:
        meta["remove"] = remove
    if len(matrix):
        if np.asarray(matrix).shape[1] != embedder.dim:
            raise ValueError(f"{embedder.id} makes {embedder.dim}-d embeddings; the matrix is {np.shape(matrix)}")
        meta["embedder"] = {"id": embedder.id, "dim": embedder.dim}
    text = json.dumps(meta, separators=(",", ":")).encode()
    return MAGIC + struct.pack("<I", len(text)) + text + np.asarray(matrix, "<f4").tobytes()


def decode(blob: bytes, kind: Literal["full", "delta"]) -> ListData:
    if blob[:4] != MAGIC or len(blob) < 8:
        raise BundleError("data does not start with the GBL1 header")
    (length,) = struct.unpack("<I", blob[4:8])
    try:
        meta = json.loads(blob[8 : 8 + length])
        entries = [ListEntry.model_validate(e) for e in meta["add" if kind == "delta" else "entries"]]
        remove = [str(s) for s in meta.get("remove", [])] if kind == "delta" else []
        made_by = BundleEmbedder.model_validate(meta["embedder"]) if "embedder" in meta else None
    except (ValueError, KeyError, TypeError, ValidationError) as e:
        raise BundleError(f"list metadata is invalid: {e}") from None
    raw = blob[8 + length :]
    rows = sum(e.embeddings for e in entries)
    embedder = EmbedderSpec(made_by.id, made_by.dim) if made_by else DLIB_EMBEDDER if rows else None
    dim = embedder.dim if embedder else 0
    if len(raw) != rows * dim * 4:
        raise BundleError(f"embedding matrix has {len(raw)} bytes, expected {rows} rows of {dim} floats")
    matrix = np.frombuffer(raw, "<f4").reshape(rows, dim).astype(np.float32)
    if not np.isfinite(matrix).all():
        raise BundleError("embedding matrix holds non-finite values")
    return ListData(entries=entries, remove=remove, matrix=matrix, embedder=embedder)


def split(blob: bytes, chunk_bytes: int = CHUNK_BYTES) -> list[bytes]:
    return [blob[i : i + chunk_bytes] for i in range(0, len(blob), chunk_bytes)] or [b""]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
