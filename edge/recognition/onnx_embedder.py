"""An ArcFace-style face embedder on ONNX Runtime, from a model file the deployment supplies.

The model takes N x 3 x 112 x 112 float input: the face similarity-aligned to the standard ArcFace
112x112 frame (insightface's reference points for the eye centres, nose tip and mouth corners),
RGB by default, each value scaled as (x - input_mean) / input_std. Its output (N x D) is
L2-normalised here and compared by cosine distance (1 - cos); D is read from the model.

Landmarks. The box finds 5 landmarks on every face with dlib's 5-point shape predictor (the same
points the dlib embedder and the sampler's quality measure use), but those are not ArcFace's five:
dlib gives the two corners of each eye and the base of the nose, not eye centres, nose tip and
mouth corners. Rather than guess the mouth, the alignment maps dlib's own five points onto where
they sit in the ArcFace frame, `DLIB5_IN_ARCFACE`. That template was measured once on the 69 faces
of the shared faces photos: each face aligned to the ArcFace frame with RetinaFace's five ArcFace-
style landmarks, dlib's points mapped through the same transform and averaged (spread 1.5-4.3 px),
then made left-right symmetric about the frame's midline (`benchmarks/embedders.py
--calibrate-template` measures it again). The RetinaFace detector's landmarks do not travel with a
tracked face (and enrolment uses dlib's detector), so dlib's points are what every path has in
common; on a real 512-d model, embeddings aligned this way separated the identities photos as well
as embeddings aligned with RetinaFace's own five points (d' 8.01 against 7.91).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.protocol.embedding import ONNX_ID_PREFIX, EmbedderSpec, ExecutionProvider
from edge.protocol.errors import ModelError
from edge.recognition.embedder import Box, EmbedderRecipe, embed_faces

log = logging.getLogger(__name__)

CHIP_SIZE = 112
# insightface's ArcFace reference, 112x112: left eye, right eye (image left/right), nose tip, mouth corners.
ARCFACE_REFERENCE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)
# dlib's 5 points in that frame, in dlib's order: image-right eye outer and inner corner, image-left
# eye outer and inner corner, base of the nose (measured as the module docstring says).
DLIB5_IN_ARCFACE = np.array(
    [[81.32, 53.41], [66.86, 54.16], [30.74, 53.41], [45.20, 54.16], [56.03, 81.31]], np.float32
)
DEFAULT_PREPROCESSING = (127.5, 128.0, "rgb")
ID_HASH_CHARS = 16  # 64 bits of the model file's sha256: enough to tell models apart, short in logs


def onnx_embedder_id(model: Path, input_mean: float, input_std: float, channels: str) -> str:
    """`onnx:<sha256 prefix of the model file>`, plus the preprocessing when it is not the default
    (the same file fed other pixels gives other embeddings)."""
    digest = hashlib.sha256()
    try:
        with model.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise ModelError(f"recognition.onnx.model: cannot read {model}: {e.strerror or e}") from None
    embedder_id = ONNX_ID_PREFIX + digest.hexdigest()[:ID_HASH_CHARS]
    if (input_mean, input_std, channels) != DEFAULT_PREPROCESSING:
        embedder_id += f";{channels};{input_mean:g};{input_std:g}"
    return embedder_id


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The 2x3 rotation + uniform scale + translation that maps `src` points onto `dst` with the least
    squared error (Umeyama 1991, no reflection): what insightface's alignment computes."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align(image: npt.NDArray[np.uint8], points: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """The 112x112 chip with dlib's 5 `points` (image pixels) moved onto `DLIB5_IN_ARCFACE`."""
    matrix = similarity_transform(points, DLIB5_IN_ARCFACE)
    chip: npt.NDArray[np.uint8] = cv2.warpAffine(
        image, matrix, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
    )
    return chip


def _providers(wanted: Sequence[ExecutionProvider]) -> list[str]:
    from edge.detectors.onnx_objects import choose_providers

    return choose_providers(wanted)


class OnnxFaceEmbedder:
    """Aligns each face with dlib's 5 landmarks to the ArcFace 112x112 frame and runs the model."""

    def __init__(self, recipe: EmbedderRecipe) -> None:
        self.recipe = recipe
        model = recipe.model
        where = f"recognition.onnx.model: {model}"
        if not model.is_file():
            raise ModelError(f"{where} does not exist (the ONNX face-embedding model is supplied by the deployment)")
        options = ort.SessionOptions()
        # One thread each by default: the embedding workers are processes already, one per core.
        options.intra_op_num_threads = recipe.threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(model), options, providers=_providers(recipe.providers))
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"{where} is not a usable ONNX model: {e}") from None
        inputs = self._session.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if shape is None or len(shape) != 4 or list(shape[1:]) != [3, CHIP_SIZE, CHIP_SIZE]:
            found = ", ".join(f"{i.name} {i.shape}" for i in inputs)
            raise ModelError(f"{where} must take one N x 3 x 112 x 112 input (an aligned face); it takes {found}")
        if inputs[0].type != "tensor(float)":
            raise ModelError(f"{where} must take float input; it takes {inputs[0].type}")
        self._input = inputs[0].name
        self._batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None  # None: any batch size
        try:  # one blank face: proves the graph runs and tells the embedding width
            probe = self._run(np.zeros((1, 3, CHIP_SIZE, CHIP_SIZE), np.float32))
        except Exception as e:
            raise ModelError(f"{where} fails on a 1 x 3 x 112 x 112 input: {e}") from None
        self.spec = EmbedderSpec(onnx_embedder_id(model, recipe.input_mean, recipe.input_std, recipe.channels),
                                 probe.shape[1])  # fmt: skip
        self.landmarks = dlib.shape_predictor(str(recipe.landmarks_model))
        log.info("face embedder %s (%d-d) on %s", self.spec.id, self.spec.dim, ", ".join(self._session.get_providers()))

    def chip(self, crop: npt.NDArray[np.uint8], box: Box) -> npt.NDArray[np.uint8]:
        """The aligned 112x112 face (in the model's channel order) of a BGR crop and the face box in it."""
        image = crop if self.recipe.channels == "bgr" else cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        image = np.ascontiguousarray(image)
        x1, y1, x2, y2 = box
        shape = self.landmarks(image, dlib.rectangle(int(x1), int(y1), int(x2), int(y2)))
        return align(image, [(p.x, p.y) for p in shape.parts()])

    def embed_crops(self, crops: Sequence[npt.NDArray[np.uint8]], boxes: Sequence[Box]) -> npt.NDArray[np.float32]:
        """One L2-normalised embedding per (BGR crop, face box in that crop)."""
        if not len(crops):
            return np.empty((0, self.spec.dim), np.float32)
        chips = np.stack([self.chip(c, b) for c, b in zip(crops, boxes, strict=True)]).astype(np.float32)
        batch = ((chips - self.recipe.input_mean) / self.recipe.input_std).transpose(0, 3, 1, 2)
        out = self._run(np.ascontiguousarray(batch))
        norms: npt.NDArray[np.float32] = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed(self, image_bgr: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One embedding per face box of a whole image."""
        return embed_faces(self, image_bgr, xyxy)

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The model's output rows for `batch`, in pieces of the model's fixed batch size if it has one."""
        step = self._batch or len(batch)
        rows = []
        for start in range(0, len(batch), step):
            piece = batch[start : start + step]
            if len(piece) < step:  # a fixed-batch model: pad the last piece with blank faces
                piece = np.concatenate([piece, np.zeros((step - len(piece), *piece.shape[1:]), np.float32)])
            (out, *_) = self._session.run(None, {self._input: piece})
            rows.append(np.asarray(out, np.float32).reshape(len(piece), -1)[: len(batch) - start])
        return np.concatenate(rows)
