"""The one place the centre runs the box's code: embedding list photos.

A face list is matched on the boxes against what their cameras see, so its vectors must come from
the same code as the boxes' enrolment (the same face checks, alignment and model): the centre calls
the box's photo-embedding entry point (`edge.enroll`) rather than a copy of it. The import is made
inside the function, so the console (`import centre.web`) never loads dlib, OpenCV or onnxruntime;
it is the single import of the box the centre's import contract allows (pyproject.toml,
`[tool.importlinter]`; checked by tests/test_layout.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from centre.config import EmbeddingConfig
from edge.protocol.embedding import EmbedderSpec


def embed_photos(
    embedding: EmbeddingConfig, models_dir: Path | None, photos: Sequence[Path]
) -> tuple[EmbedderSpec, npt.NDArray[np.float32]]:
    """One embedding per photo (one row each, in order) and the embedder that made them; InputError
    naming the photo and the reason for a photo without exactly one usable face."""
    from edge.enroll import embed_photo, embedder_for  # the box's code: loads dlib and OpenCV

    embedder = embedder_for(embedding, models_dir)
    rows = [embed_photo(embedder, photo) for photo in photos]
    return embedder.spec, np.stack(rows).astype(np.float32)
