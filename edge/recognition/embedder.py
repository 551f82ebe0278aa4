"""Face embedders: dlib's 128-d ResNet (the default, the model face_recognition uses) or an ONNX
model the deployment supplies (`edge.recognition.onnx_embedder`).

What each embedder says it is (`EmbedderSpec`: id and width), and the refusal to mix two
(`EmbedderMismatch`), are the protocol's (`edge.protocol.embedding`): list bundles carry them.
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

from edge.protocol.embedding import DLIB_EMBEDDER, EmbedderKind, EmbedderSpec, ExecutionProvider, OnnxEmbedderConfig

Box = tuple[float, float, float, float]


class EmbedderChoice(Protocol):
    """Which embedder to build: the box's `recognition` section, or the centre's."""

    @property
    def embedder(self) -> EmbedderKind: ...

    @property
    def onnx(self) -> OnnxEmbedderConfig | None: ...


@dataclass(frozen=True)
class EmbedderRecipe:
    """Everything needed to build the same embedder again, e.g. in an embedding worker process (picklable)."""

    kind: Literal["dlib", "onnx"]
    landmarks_model: Path  # dlib's 5-point shape predictor: both embedders align with it
    model: Path
    input_mean: float = 127.5
    input_std: float = 128.0
    channels: Literal["rgb", "bgr"] = "rgb"
    providers: tuple[ExecutionProvider, ...] = ("cpu",)
    threads: int = 1

    def build(self) -> FaceEmbedder:
        if self.kind == "dlib":
            return DlibFaceEmbedder(self.landmarks_model, self.model)
        from edge.recognition.onnx_embedder import OnnxFaceEmbedder

        return OnnxFaceEmbedder(self)


def embedder_recipe(config: EmbedderChoice, model_paths: Mapping[str, Path]) -> EmbedderRecipe:
    """The configured embedder; `model_paths` are the verified model files by manifest name."""
    landmarks = model_paths["face_landmarks_5"]
    if config.embedder == "dlib":
        return EmbedderRecipe("dlib", landmarks, model_paths["face_embedding"])
    onnx = config.onnx
    assert onnx is not None  # the config refuses `embedder: onnx` without its section
    return EmbedderRecipe("onnx", landmarks, onnx.model, onnx.input_mean, onnx.input_std, onnx.channels,
                          tuple(onnx.providers), onnx.threads)  # fmt: skip


def configured_embedder_id(config: EmbedderChoice) -> str:
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
