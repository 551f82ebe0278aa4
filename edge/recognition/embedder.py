"""128-d face embeddings with dlib's ResNet model (the model face_recognition uses)."""

from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

EMBEDDING_SIZE = 128


class DlibFaceEmbedder:
    """Aligns each face with 5 landmarks and embeds the 150x150 chip.

    Only a padded crop around each face is converted to RGB: converting a whole 1080p frame
    per face would cost more than the alignment itself.
    """

    def __init__(self, landmarks_model: Path, embedding_model: Path) -> None:
        self._landmarks = dlib.shape_predictor(str(landmarks_model))
        self._encoder = dlib.face_recognition_model_v1(str(embedding_model))

    def embed(
        self, image_bgr: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """One L2-comparable embedding per box; boxes in the image's pixels."""
        out = np.empty((len(xyxy), EMBEDDING_SIZE), np.float32)
        height, width = image_bgr.shape[:2]
        for i, (x1, y1, x2, y2) in enumerate(np.asarray(xyxy, np.float32)):
            pad = 0.5 * max(x2 - x1, y2 - y1)
            cx1, cy1 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
            cx2, cy2 = int(min(width, x2 + pad)), int(min(height, y2 + pad))
            crop = np.ascontiguousarray(cv2.cvtColor(image_bgr[cy1:cy2, cx1:cx2], cv2.COLOR_BGR2RGB))
            rect = dlib.rectangle(int(x1) - cx1, int(y1) - cy1, int(x2) - cx1, int(y2) - cy1)
            shape = self._landmarks(crop, rect)
            out[i] = np.asarray(self._encoder.compute_face_descriptor(crop, shape), np.float32)
        return out
