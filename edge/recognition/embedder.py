"""Face embedders: dlib's 128-d ResNet (the default, the model face_recognition uses) or an ONNX
model the deployment supplies (`edge.recognition.onnx_embedder`).

Every embedder says what it is (`EmbedderSpec`): an id that galleries and list bundles carry and
the width of its embeddings. Embeddings of two embedders live in different spaces, so a distance
between them means nothing: the box refuses to mix them (`EmbedderMismatch`) rather than match
against noise. A gallery or bundle that predates embedder ids is dlib's (`DLIB_EMBEDDER`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from edge.config import RecognitionConfig
from edge.errors import GateboxError

Box = tuple[float, float, float, float]
ONNX_ID_PREFIX = "onnx:"


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


@dataclass(frozen=True)
class EmbedderRecipe:
    """Everything needed to build the same embedder again, e.g. in an embedding worker process (picklable)."""

    kind: Literal["dlib", "onnx"]
    landmarks_model: Path  # dlib's 5-point shape predictor: both embedders align with it
    model: Path
    input_mean: float = 127.5
    input_std: float = 128.0
    channels: Literal["rgb", "bgr"] = "rgb"
    providers: tuple[str, ...] = ("cpu",)
    threads: int = 1

    def build(self) -> FaceEmbedder:
        if self.kind == "dlib":
            return DlibFaceEmbedder(self.landmarks_model, self.model)
        from edge.recognition.onnx_embedder import OnnxFaceEmbedder

        return OnnxFaceEmbedder(self)


def embedder_recipe(config: RecognitionConfig, model_paths: Mapping[str, Path]) -> EmbedderRecipe:
    """The configured embedder; `model_paths` are the verified model files by manifest name."""
    landmarks = model_paths["face_landmarks_5"]
    if config.embedder == "dlib":
        return EmbedderRecipe("dlib", landmarks, model_paths["face_embedding"])
    onnx = config.onnx
    assert onnx is not None  # the config refuses `embedder: onnx` without its section
    return EmbedderRecipe("onnx", landmarks, onnx.model, onnx.input_mean, onnx.input_std, onnx.channels,
                          tuple(onnx.providers), onnx.threads)  # fmt: skip


def configured_embedder_id(config: RecognitionConfig) -> str:
    """The id of the configured embedder without loading it (the list sync compares bundles with it)."""
    if config.embedder == "dlib":
        return DLIB_EMBEDDER.id
    from edge.recognition.onnx_embedder import onnx_embedder_id

    onnx = config.onnx
    assert onnx is not None
    return onnx_embedder_id(onnx.model, onnx.input_mean, onnx.input_std, onnx.channels)


class FaceEmbedder(Protocol):
    spec: EmbedderSpec
    recipe: EmbedderRecipe
    landmarks: dlib.shape_predictor  # also what the sampler's face-quality measure uses

    def embed_crops(self, crops: Sequence[npt.NDArray[np.uint8]], boxes: Sequence[Box]) -> npt.NDArray[np.float32]:
        """One embedding per (BGR crop, face box in that crop), shape (N, spec.dim)."""
        ...

    def embed(self, image_bgr: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One embedding per face box of a whole image."""
        ...


def embed_faces(
    embedder: FaceEmbedder, image_bgr: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """`embed` of any embedder: crop each face box of a whole image, then `embed_crops`."""
    from edge.recognition.sampler import crop_face

    if not len(xyxy):
        return np.empty((0, embedder.spec.dim), np.float32)
    crops, boxes = zip(*(crop_face(image_bgr, box) for box in xyxy), strict=True)
    return embedder.embed_crops(crops, boxes)


class DlibFaceEmbedder:
    """Aligns each face with 5 landmarks and embeds the 150x150 chip (~60 ms a face on one core)."""

    spec = DLIB_EMBEDDER

    def __init__(self, landmarks_model: Path, embedding_model: Path) -> None:
        self.recipe = EmbedderRecipe("dlib", landmarks_model, embedding_model)
        self.landmarks = dlib.shape_predictor(str(landmarks_model))
        self._encoder = dlib.face_recognition_model_v1(str(embedding_model))

    def embed_crops(self, crops: Sequence[npt.NDArray[np.uint8]], boxes: Sequence[Box]) -> npt.NDArray[np.float32]:
        """One embedding per (BGR crop, face box in that crop)."""
        out = np.empty((len(crops), self.spec.dim), np.float32)
        for i, (crop, (x1, y1, x2, y2)) in enumerate(zip(crops, boxes, strict=True)):
            rgb = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            shape = self.landmarks(rgb, dlib.rectangle(int(x1), int(y1), int(x2), int(y2)))
            out[i] = np.asarray(self._encoder.compute_face_descriptor(rgb, shape), np.float32)
        return out

    def embed(self, image_bgr: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One embedding per face box of a whole image."""
        return embed_faces(self, image_bgr, xyxy)
