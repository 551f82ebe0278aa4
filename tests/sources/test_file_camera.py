"""A video file configured as a camera loops like a camera that never stops: its end is not a lost camera."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import CameraConfig
from edge.health import CameraStatus
from edge.sources.video import LiveCamera


def write_clip(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 200.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    return path


def test_a_file_camera_loops_without_being_reported_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clip = write_clip(tmp_path / "gate.avi", 5)
    status = CameraStatus("west")
    camera = LiveCamera(CameraConfig(name="west", url=str(clip)), threading.Event(), status)
    seen_connected = []
    with caplog.at_level(logging.INFO, logger="edge.sources.video"):
        frames = camera.frames()
        for _, frame in zip(range(17), frames, strict=False):  # three times through the clip and then some
            seen_connected.append(status.connected)
            assert frame.image.shape == (48, 64, 3)
        frames.close()
    assert all(seen_connected)  # never shown as lost between two passes
    assert camera.connects == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not status.connected  # closed by its consumer: no longer connected


def test_a_file_that_cannot_be_opened_is_still_a_lost_camera(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    status = CameraStatus("west")
    camera = LiveCamera(CameraConfig(name="west", url=str(tmp_path / "missing.avi"), open_timeout_s=1),
                        stop, status)  # fmt: skip
    frames = camera.frames()
    threading.Timer(0.5, stop.set).start()
    with caplog.at_level(logging.WARNING, logger="edge.sources.video"):
        assert list(frames) == []
    assert "cannot open stream" in caplog.text and not status.connected
