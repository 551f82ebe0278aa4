"""Headless Chromium for the console's browser tests (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GATEBOX_TEST_ARTIFACTS", REPO / "test-artifacts"))
# As root in a container, on a closed network: no sandbox, no background calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def playwright_or_skip() -> ModuleType:
    """Playwright's sync API, the test skipped with a reason where Chromium or Playwright is missing;
    the screenshots' folder made."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed; ./scripts/test installs Debian's chromium when run as root")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return sync_api
