"""The user-supplied ONNX person/vehicle detector adapter, on a tiny YOLO-shaped model built here
with the `onnx` package: decoding, class filtering, NMS and letterbox undoing are real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.config import ObjectDetectorConfig
from edge.detectors.onnx_objects import CLASS_NAME, OnnxObjectDetector, choose_providers
from edge.protocol.errors import ModelError

# Three predictions in 64x64 input pixels: a person, a near-duplicate of it (NMS drops it), and a
# faint car (below the confidence floor). YOLOv8 layout: (1, 4 + classes, N).
PREDICTIONS = np.array([
    # cx   cy   w    h   person car
    [32.0, 32.0, 20.0, 40.0, 0.9, 0.05],
    [33.0, 32.0, 20.0, 40.0, 0.8, 0.05],
    [10.0, 10.0, 8.0, 8.0, 0.01, 0.3],
], np.float32).T[None]  # fmt: skip


def tiny_model(path: Path) -> Path:
    """Output = PREDICTIONS + 0 * mean(input): a real graph whose output depends on its input."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Reshape", ["nothing", "shape"], ["nothing3"]),
        helper.make_node("Add", ["predictions", "nothing3"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(PREDICTIONS.shape))],
        [numpy_helper.from_array(PREDICTIONS, "predictions"), numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
         numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def config(tmp_path: Path) -> ObjectDetectorConfig:
    return ObjectDetectorConfig(model=tiny_model(tmp_path / "tiny.onnx"), input_size=(64, 64),
                                class_names={0: "person", 1: "car"}, classes=["person", "car"])  # fmt: skip


def test_decodes_filters_and_maps_back_to_the_frame(config: ObjectDetectorConfig) -> None:
    detector = OnnxObjectDetector(config)
    found = detector.detect(np.zeros((256, 256, 3), np.uint8))  # scale 0.25
    assert found.data[CLASS_NAME].tolist() == ["person"] and found.class_id.tolist() == [0]
    assert np.allclose(found.xyxy[0], [88, 48, 168, 208]) and found.confidence[0] == pytest.approx(0.9)
    wide = detector.detect(np.zeros((128, 256, 3), np.uint8))  # letterboxed (padding below); clipped to the frame
    assert np.allclose(wide.xyxy[0], [88, 48, 168, 128])


def test_class_filter(config: ObjectDetectorConfig) -> None:
    only_cars = config.model_copy(update={"classes": ["car"], "min_confidence": 0.2})
    assert OnnxObjectDetector(only_cars).detect(np.zeros((64, 64, 3), np.uint8)).data[CLASS_NAME].tolist() == ["car"]


def test_nothing_found_is_empty_detections_with_class_names(config: ObjectDetectorConfig) -> None:
    strict = config.model_copy(update={"min_confidence": 0.95})
    nothing = OnnxObjectDetector(strict).detect(np.zeros((64, 64, 3), np.uint8))
    assert len(nothing) == 0 and nothing.xyxy.shape == (0, 4) and nothing.data[CLASS_NAME].shape == (0,)


def test_providers_fall_back_to_the_cpu() -> None:
    assert choose_providers(["tensorrt", "cuda"])[-1] == "CPUExecutionProvider"


def test_bad_model_files_are_clear_errors(tmp_path: Path, config: ObjectDetectorConfig) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        OnnxObjectDetector(config.model_copy(update={"model": tmp_path / "missing.onnx"}))
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        OnnxObjectDetector(config.model_copy(update={"model": tmp_path / "junk.onnx"}))
