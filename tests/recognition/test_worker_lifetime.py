"""Embedding workers die with their parent (issue 13, item 23): after a SIGKILL of the process that
owns the pool, its workers (~150 MB each) and multiprocessing's resource tracker are gone within
seconds, whether the kernel's parent-death signal or the parent-watching thread ends them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # every test starts processes

# A process that owns an embedding pool, prints the pids that must not outlive it, then waits. As a
# file, not `-c`: spawned workers import it again (outside __main__), so `without_prctl` reaches them.
OWNER = """
import json, sys
import edge.recognition.worker as worker

if sys.argv[1] == "without_prctl":
    worker.set_parent_death_signal = lambda: None  # leave the parent-watching thread alone to do it

if __name__ == "__main__":
    import multiprocessing.resource_tracker as tracker
    from edge.config import GateboxConfig
    from edge.models import verify_models
    from edge.recognition.embedder import DlibFaceEmbedder

    paths = verify_models(GateboxConfig().models_path)
    model_paths = (paths["face_landmarks_5"], paths["face_embedding"])
    runner = worker.EmbeddingRunner(DlibFaceEmbedder(*model_paths), workers=2)
    helpers = [*runner._pool._processes, tracker._resource_tracker._pid]
    print(json.dumps([pid for pid in helpers if pid]), flush=True)
    sys.stdin.read()
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["with_prctl", "without_prctl"])
def test_workers_and_helper_exit_when_the_parent_is_killed(tmp_path: Path, how: str) -> None:
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script), how], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert owner.stdout is not None  # stdout=PIPE
    try:
        line = owner.stdout.readline()
        assert line, "the pool's owner exited before its workers started"
        helpers = json.loads(line)
        assert len(helpers) >= 3 and all(alive(pid) for pid in helpers)  # two workers and the tracker
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        wait_for(lambda: not any(alive(pid) for pid in helpers), 10, f"workers {helpers} to exit ({how})")
    finally:
        owner.kill()
        owner.wait()
