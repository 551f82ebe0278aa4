"""Runs embeddings beside the pipeline, in a worker process, and hands results back in order.

dlib holds the GIL while it embeds, so a thread would not use the second core; a process does.
Results are consumed strictly in submission order with a fixed lag, so a replay gives the same
alerts however fast each side runs.

A worker dies with the process that started it: after a SIGKILL of the box nothing else would end
it (it shares the pool's pipes, so it never reads end-of-file), and each holds ~150 MB.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.recognition.embedder import EmbedderRecipe, FaceEmbedder
from edge.types import FaceSample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """Face samples and their embeddings, row for row, in the order they were submitted."""

    samples: list[FaceSample]
    embeddings: npt.NDArray[np.float32]  # (len(samples), the embedder's dim)


@dataclass(frozen=True)
class _InFlight:
    """One submission the workers are embedding: a future per sample."""

    samples: list[FaceSample]
    futures: list[Future[npt.NDArray[np.float32]]]


_worker_embedder: FaceEmbedder | None = None
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 1.0


def _init_worker(parent_pid: int, recipe: EmbedderRecipe) -> None:
    global _worker_embedder
    die_with_parent(parent_pid)
    _worker_embedder = recipe.build()


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` (its parent) ends, however it ends: the kernel signals it
    (Linux), and a thread watching for a new parent covers other systems and the race where the
    parent died before the signal was asked for."""
    set_parent_death_signal()
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


def set_parent_death_signal() -> None:
    """SIGTERM this process when the thread that started it ends (the pool's owner; `prctl(2)`)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as e:  # no prctl: the watching thread alone
        log.warning("prctl unavailable (%s): an orphaned worker is noticed by polling", e)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _ready() -> bool:
    return _worker_embedder is not None


def _embed_in_worker(crops: list[npt.NDArray[np.uint8]], boxes: list[tuple]) -> npt.NDArray[np.float32]:
    assert _worker_embedder is not None
    return _worker_embedder.embed_crops(crops, boxes)


class EmbeddingRunner:
    """`submit` a frame's samples; get back the batches that are `lag` submissions old, in order.

    With `workers=0` embeddings run synchronously in the caller (lag 0). Otherwise each face is
    its own job, so the faces of one pass are embedded in parallel across the workers.
    """

    def __init__(self, embedder: FaceEmbedder, workers: int, lag: int = 2) -> None:
        self._embedder = embedder  # the workers build the same one from its recipe
        self._workers = workers
        self._lag = lag if workers else 0
        self._pool: ProcessPoolExecutor | None = self._start_pool() if workers else None
        self._pending: deque[_InFlight] = deque()

    def _start_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with threads
            initializer=_init_worker,
            initargs=(os.getpid(), self._embedder.recipe),
        )
        for ready in [pool.submit(_ready) for _ in range(self._workers)]:
            ready.result()  # pay the workers' start-up (~1 s) now, not on the first faces
        return pool

    def submit(self, samples: Sequence[FaceSample]) -> list[Batch]:
        samples = list(samples)
        if self._pool is None:
            return [Batch(samples, self._embed_here(samples))] if samples else []
        futures = [self._pool.submit(_embed_in_worker, [s.crop], [s.crop_xyxy]) for s in samples]
        self._pending.append(_InFlight(samples, futures))
        done = []
        while len(self._pending) > self._lag:
            done.extend(self._collect(self._pending.popleft()))
        return done

    def drain(self) -> list[Batch]:
        """Wait for everything submitted (end of a replay)."""
        done = []
        while self._pending:
            done.extend(self._collect(self._pending.popleft()))
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _embed_here(self, samples: list[FaceSample]) -> npt.NDArray[np.float32]:
        return self._embedder.embed_crops([s.crop for s in samples], [s.crop_xyxy for s in samples])

    def _collect(self, submitted: _InFlight) -> list[Batch]:
        samples = submitted.samples
        if not samples:
            return []
        try:
            embeddings = np.concatenate([f.result() for f in submitted.futures])
        except BrokenProcessPool:
            # A worker died (OOM killer, a native crash): embed this batch here, restart the pool.
            log.error("embedding worker died; restarting the pool")
            self._pool = self._start_pool()
            embeddings = self._embed_here(samples)
        assert embeddings.shape == (len(samples), self._embedder.spec.dim)
        return [Batch(samples, embeddings)]
