"""The decode thread: a live camera's decoder is never held up by a slow pipeline (it drops the
oldest frames instead), while a replay never loses a frame however slow the pipeline is."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from edge.sources.reader import FrameReader
from edge.types import Frame

IMAGE = np.zeros((2, 2, 3), np.uint8)


def camera(frames: int, interval_s: float, delivered: list[float]) -> Iterator[Frame]:
    """A source that produces a frame every `interval_s` and notes when each one was taken from it."""
    for i in range(frames):
        time.sleep(interval_s)  # the camera's own pace: what the reader must not slow down
        yield Frame("gate", i, time.time(), IMAGE)
        delivered.append(time.monotonic())


def test_slow_consumer_never_blocks_a_live_decoder() -> None:
    delivered: list[float] = []
    started = time.monotonic()
    reader = FrameReader(camera(60, 0.005, delivered), maxsize=2, drop_oldest=True)
    seen = []
    for frame in reader:
        seen.append(frame.index)
        time.sleep(0.03)  # the pipeline is 6x slower than the camera
    producer_s = delivered[-1] - started
    # The source ran at its own pace (60 x 5 ms), not at the consumer's (60 x 30 ms).
    assert producer_s < 0.6 * 60 * 0.03, producer_s
    assert reader.dropped > 0 and len(seen) + reader.dropped == 60
    assert seen == sorted(seen) and seen[-1] == 59  # in order, and the newest frame is never the one dropped


def test_replay_reader_never_drops_a_frame() -> None:
    reader = FrameReader(camera(40, 0.0, []), maxsize=2, drop_oldest=False)
    seen = []
    for frame in reader:
        seen.append(frame.index)
        time.sleep(0.005)  # a consumer slower than the file: the reader must wait for it, not drop
    assert seen == list(range(40)) and reader.dropped == 0


def test_source_errors_reach_the_consumer() -> None:
    def broken() -> Iterator[Frame]:
        yield Frame("gate", 0, 0.0, IMAGE)
        raise OSError("decoder died")

    reader = FrameReader(broken())
    got = []
    try:
        for frame in reader:
            got.append(frame.index)
    except OSError as e:
        assert str(e) == "decoder died"
    else:
        raise AssertionError("the source's error was swallowed")
    assert got == [0]
