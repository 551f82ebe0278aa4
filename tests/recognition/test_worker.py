"""The embedding worker process gives the same embeddings as embedding inline, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config import GateboxConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.models import verify_models
from edge.recognition.embedder import DlibFaceEmbedder
from edge.recognition.sampler import crop_face
from edge.recognition.worker import EmbeddingRunner
from edge.types import FaceSample
from tests.support import crowd

pytestmark = pytest.mark.slow  # spawns the embedding worker processes


@pytest.fixture(scope="module")
def samples(crowd_clip: Path) -> list[FaceSample]:
    out = []
    for index in (10, 30, 60):
        image = crowd.read_frame(crowd_clip, index)
        for track, box in enumerate(DlibHogFaceDetector(1280, 1).detect(image).xyxy):
            crop, crop_box = crop_face(image, box)
            out.append(FaceSample("gate", index, float(index), track, tuple(box), crop, crop_box, 1.0))
    return out


def test_worker_process_matches_inline_in_order(samples: list[FaceSample]) -> None:
    paths = verify_models(GateboxConfig().models_path)
    model_paths = (paths["face_landmarks_5"], paths["face_embedding"])
    embedder = DlibFaceEmbedder(*model_paths)
    inline = EmbeddingRunner(embedder, workers=0)
    worker = EmbeddingRunner(embedder, workers=2, lag=2)
    batches = [samples[i : i + 2] for i in range(0, len(samples), 2)] + [[]]
    try:
        expected = [b for batch in batches for b in inline.submit(batch)]
        got = []
        for batch in batches:
            got += worker.submit(batch)
            assert len(got) <= max(0, batches.index(batch) - 1)  # results lag two submissions
        got += worker.drain()
    finally:
        worker.close()
    assert [s for b in got for s in b.samples] == [s for b in expected for s in b.samples] == samples
    assert np.allclose(np.concatenate([b.embeddings for b in got]), np.concatenate([b.embeddings for b in expected]),
                       atol=1e-5)  # fmt: skip
