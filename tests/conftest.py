"""Shared fixtures: the real test data (skipped when absent), a real mosquitto broker, the CLI; and
the two tiers: `slow` (a real mosquitto, a subprocess, Chromium, the pipeline on a real clip) and the
fast in-process rest (`pytest -m "not slow"`, `./scripts/test --fast`)."""

from __future__ import annotations

import multiprocessing.util
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from tests.support.broker import Mosquitto, find_mosquitto
from tests.support.enrolled import EnrolledData
from tests.support.postgres import Postgres, unavailable_reason

REPO = Path(__file__).resolve().parent.parent

# A test that asks for one of these fixtures (directly or through another fixture) is in the slow tier:
# each starts a mosquitto or a `python -m edge` process. Tests that launch processes themselves (run_cli,
# start_cli, scripts) carry an explicit @pytest.mark.slow; the fast tier's guard below catches a missing one.
SLOW_FIXTURES = frozenset(
    {"broker", "secure_broker", "own_broker", "console", "enrolled_data", "postgres", "postgres_url"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@contextmanager
def _no_processes(nodeid: str) -> Iterator[None]:
    """Any process launch (subprocess, a multiprocessing spawn) fails the test: the fast tier stays in one
    process, so it stays fast and needs neither mosquitto nor the CLI."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{nodeid} is in the fast tier but launched a process: mark it @pytest.mark.slow")

    with mock.patch.object(subprocess.Popen, "_execute_child", refuse), \
            mock.patch.object(multiprocessing.util, "spawnv_passfds", refuse):  # fmt: skip
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """Guards the fast tier through setup, call and teardown (so a module- or session-scoped fixture a fast
    test is the first to ask for is guarded too)."""
    if item.get_closest_marker("slow"):
        yield
        return
    with _no_processes(item.nodeid):
        yield


def _shared_data() -> Path:
    return Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data()
    if not (path / "video").is_dir():
        pytest.skip(f"real test data not found at {path} (set GATEBOX_TEST_DATA to its folder)")
    return path


@pytest.fixture(scope="session")
def crowd_clip(shared_data: Path) -> Path:
    return shared_data / "video" / "crowd_toward_camera.mp4"


@pytest.fixture(scope="session")
def faces_dir(shared_data: Path) -> Path:
    return shared_data / "faces"


@pytest.fixture(scope="session")
def enrolled_data(tmp_path_factory: pytest.TempPathFactory, crowd_clip: Path, faces_dir: Path) -> EnrolledData:
    """`enrolled_data.copy(tmp_path / "box", {"boy": "watchlist"})`: a data directory with those faces
    enrolled, copied from one enrolled once per session."""
    return EnrolledData(tmp_path_factory.mktemp("enrolled"), crowd_clip, faces_dir)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; ./scripts/test installs it when run as root")
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server of the tests' own (tests/support/postgres.py), for the session."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    """A fresh, empty PostgreSQL database for one test: its URL."""
    return postgres.new_database()


def write_config(path: Path, **sections: Any) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


@pytest.fixture
def broker_config(tmp_path: Path, broker: Mosquitto) -> Path:
    """A config whose broker is the test mosquitto; box identity unique per test."""
    return write_config(
        tmp_path / "gatebox.yaml",
        box={"site": "test-site", "box_id": f"box-{os.getpid()}-{tmp_path.name[-8:]}"[:64]},
        broker={"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5, "flush_timeout_s": 10},
    )


def run_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m edge ARGS` the way an operator would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "edge", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def start_cli(*args: str | Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running `python -m edge ARGS` with stderr (its log) going to `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "edge", *map(str, args)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
