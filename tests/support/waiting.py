"""Polling with a deadline, for tests that wait on another process."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_listening(process: subprocess.Popen, port: int, timeout: float, name: str, output: Callable[[], str]) -> None:
    """Until `process` accepts connections on loopback `port`; RuntimeError with its `output` if
    it exits first or never listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on port {port}: {output()}")
