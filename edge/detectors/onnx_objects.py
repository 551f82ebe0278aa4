"""Person/vehicle detection with a YOLO-style ONNX model the user supplies (none ships in a package).

Output layouts: `yolov8` (1, 4 + classes, N: cx, cy, w, h, class scores) and `yolov5`
(1, N, 5 + classes: cx, cy, w, h, objectness, class scores), in input pixels. Frames are
letterboxed to the model's input size; boxes come back in frame pixels after NMS. The execution
provider (CPU, CUDA, TensorRT, OpenVINO) is chosen in the config; one that this onnxruntime build
lacks is skipped with a warning, and the CPU is always the last resort.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.config import ObjectDetectorConfig
from edge.protocol.embedding import ExecutionProvider
from edge.protocol.errors import ModelError
from edge.types import Detections

log = logging.getLogger(__name__)

PROVIDERS: dict[ExecutionProvider, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


CLASS_NAME = "class_name"  # `Detections.data` key: each object's class, as named in `objects.class_names`


def choose_providers(wanted: Sequence[ExecutionProvider]) -> list[str]:
    """ONNX Runtime's names of the `wanted` providers this build has, the CPU always last."""
    available = set(ort.get_available_providers())
    chosen = []
    for name in wanted:
        provider = PROVIDERS[name]
        if provider in available:
            chosen.append(provider)
        else:
            log.warning("execution provider %s is not in this onnxruntime build; skipping it", provider)
    return [*chosen, "CPUExecutionProvider"] if "CPUExecutionProvider" not in chosen else chosen


class OnnxObjectDetector:
    def __init__(self, config: ObjectDetectorConfig) -> None:
        if not Path(config.model).is_file():
            raise ModelError(f"objects.model: {config.model} does not exist")
        try:
            self._session = ort.InferenceSession(str(config.model), providers=choose_providers(config.providers))
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"objects.model: {config.model} is not a usable ONNX model: {e}") from None
        log.info("object detector %s on %s", config.model.name, ", ".join(self._session.get_providers()))
        self._config = config
        self._input = self._session.get_inputs()[0].name
        self._wanted = {i for i, name in config.class_names.items() if name in config.classes}

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        """The wanted classes' objects in frame pixels, with the model's class ids and `CLASS_NAME`s."""
        width_in, height_in = self._config.input_size
        height, width = image_bgr.shape[:2]
        scale = min(width_in / width, height_in / height)
        resized = cv2.resize(image_bgr, (round(width * scale), round(height * scale)))
        canvas = np.full((height_in, width_in, 3), 114, np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        batch = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        (output,) = self._session.run(None, {self._input: batch})[:1]
        if self._config.output_format == "yolov8":
            rows = output[0].T  # (N, 4 + classes)
            scores_all = rows[:, 4:]
        else:
            rows = output[0]  # (N, 5 + classes)
            scores_all = rows[:, 5:] * rows[:, 4:5]
        class_ids = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(rows)), class_ids]
        keep = (scores >= self._config.min_confidence) & np.isin(class_ids, list(self._wanted))
        rows, scores, class_ids = rows[keep], scores[keep], class_ids[keep]
        if not len(rows):
            return Detections(data={CLASS_NAME: np.empty(0, str)})
        boxes_xywh = np.stack([rows[:, 0] - rows[:, 2] / 2, rows[:, 1] - rows[:, 3] / 2, rows[:, 2], rows[:, 3]], 1)
        chosen = cv2.dnn.NMSBoxesBatched(boxes_xywh.tolist(), scores.tolist(), class_ids.tolist(),
                                         self._config.min_confidence, self._config.nms_iou)  # fmt: skip
        chosen = np.asarray(chosen, int).reshape(-1)
        xyxy = boxes_xywh[chosen].copy()
        xyxy[:, 2:] += xyxy[:, :2]
        xyxy = (xyxy / scale).clip(0, [width, height, width, height]).astype(np.float32)
        names = [self._config.class_names[int(c)] for c in class_ids[chosen]]
        return Detections.from_boxes(xyxy, scores[chosen], class_ids[chosen], {CLASS_NAME: np.array(names, str)})
