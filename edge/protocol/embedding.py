"""Embedding metadata: which embedder made a face embedding, and how wide it is.

Gallery and probe vectors must come from the same embedder: embeddings of two embedders live in
different spaces, so a distance between them means nothing. Every embedder says what it is
(`EmbedderSpec`): an id that galleries and list bundles carry, and the width of its embeddings.
The box refuses to mix two (`EmbedderMismatch`) rather than match against noise. A gallery or
bundle that predates embedder ids is dlib's (`DLIB_EMBEDDER`). The embedders themselves (dlib,
ONNX) are the box's: `edge.recognition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.protocol.errors import GateboxError

ONNX_ID_PREFIX = "onnx:"
EmbedderKind = Literal["dlib", "onnx"]


@dataclass(frozen=True)
class EmbedderSpec:
    """What an embedder produces: `id` names the model (and preprocessing), `dim` the embedding width."""

    id: str
    dim: int

    @property
    def metric(self) -> Literal["euclidean", "cosine"]:
        """dlib's space is trained for Euclidean distance; ArcFace-style models for the angle between
        L2-normalised embeddings (cosine distance, 1 - cos)."""
        return "cosine" if self.id.startswith(ONNX_ID_PREFIX) else "euclidean"


DLIB_EMBEDDER = EmbedderSpec("dlib-resnet-v1", 128)


class EmbedderMismatch(GateboxError):
    """Embeddings made by one embedder offered to a gallery, list or box that uses another."""


ExecutionProvider = Literal["cpu", "cuda", "tensorrt", "openvino"]  # ONNX Runtime's, by our short names


def cpu_only() -> list[ExecutionProvider]:
    return ["cpu"]


class OnnxEmbedderConfig(BaseModel):
    """An ONNX face embedder the deployment supplies (`recognition.onnx`): the box embeds with it,
    the centre builds lists with it, and both must name the same file. Its thresholds are the box's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: Path = Field(
        description="The ArcFace-style ONNX face-embedding model the deployment supplies: one float input "
        "N x 3 x 112 x 112 (the face aligned to the standard ArcFace 112x112 landmarks), one output N x D "
        "(any width D; L2-normalised and compared by cosine distance). Its sha256 is the embedder id that "
        "galleries and list bundles carry: the centre must build lists with the same file.",
        examples=["/etc/gatebox/face_embedding.onnx"],
    )
    providers: list[ExecutionProvider] = Field(
        default_factory=cpu_only,
        description="ONNX Runtime execution providers in order of preference (CPU is the fallback).",
    )
    threads: int = Field(1, ge=1, le=16, description="ONNX Runtime threads per embedding process.")
    input_mean: float = Field(127.5, description="Each input value is (pixel - input_mean) / input_std.")
    input_std: float = Field(128.0, gt=0, description="Each input value is (pixel - input_mean) / input_std.")
    channels: Literal["rgb", "bgr"] = Field("rgb", description="Channel order the model was trained on.")
    match_distance: float = Field(
        0.60,
        gt=0,
        lt=2,
        description="Cosine distance (1 - cos) below which a face matches a subject: this embedder's own "
        "threshold, in place of the dlib `match_distance`. Fit it to your model on your own photos "
        "(`benchmarks/embedders.py --onnx MODEL` prints the genuine/impostor distances and the EER).",
    )
    strong_distance: float = Field(
        0.45,
        gt=0,
        lt=2,
        description="Cosine distance at which a single frame is enough evidence on its own (this embedder's "
        "`strong_distance`).",
    )
