"""A small ONNX face embedder built by the tests (with the `onnx` package), deterministic: the
aligned 112x112 face is average-pooled to 14x14, centred on its own mean and projected by a fixed
random matrix (seeded). It cannot recognise people across photos the way a trained model does, but
it has the shape and contract of one (N x 3 x 112 x 112 in, N x D out), so it tests the plumbing:
alignment, preprocessing, normalisation, embedder ids, dimensions and thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_tiny_embedder(path: Path, dim: int = 64, batch: int | str = "N", side: int = 112, seed: int = 14) -> Path:
    """Write the model to `path`; `batch` "N" takes any batch size, an int a fixed one; `side` other
    than 112 makes a model the box must refuse."""
    rng = np.random.default_rng(seed)
    pool = side // 14 or 1
    features = 3 * (side // pool) ** 2
    weights = numpy_helper.from_array(rng.normal(size=(features, dim)).astype(np.float32), "projection")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[pool, pool], strides=[pool, pool]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("ReduceMean", ["flat", "axes"], ["mean"], keepdims=1),
        helper.make_node("Sub", ["flat", "mean"], ["centred"]),
        helper.make_node("MatMul", ["centred", "projection"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_face_embedder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, side, side])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, dim])],
        initializer=[weights, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
