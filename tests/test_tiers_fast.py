"""The fast tier stays in one process: a test not marked `slow` that launches a subprocess or a
multiprocessing worker fails, naming itself (tests/conftest.py), so a test that needs mosquitto or the
CLI cannot slip into `./scripts/test --fast` unmarked."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import pytest


def test_a_subprocess_fails_a_fast_test() -> None:
    with pytest.raises(AssertionError, match="test_a_subprocess_fails_a_fast_test is in the fast tier"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


def test_a_spawned_worker_fails_a_fast_test() -> None:
    process = multiprocessing.get_context("spawn").Process(target=print)
    with pytest.raises(AssertionError, match="in the fast tier"):
        process.start()
