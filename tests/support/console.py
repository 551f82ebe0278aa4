"""The centre console as operators run it (`gatebox centre serve` in its own process), and an
HTTP client logged in to it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from fastapi.testclient import TestClient

from centre.auth import hash_password
from centre.config import CentreConfig, ConsoleConfig
from centre.console import Console
from centre.web import create_app
from tests.conftest import REPO, start_cli, write_config
from tests.support.broker import free_port
from tests.support.waiting import wait_listening

if TYPE_CHECKING:
    from playwright.sync_api import Page

OPERATOR, PASSWORD = "op1", "correct horse battery"
CSRF_HEADER = "X-Gatebox-CSRF"


def log_in_page(page: Page, url: str) -> None:
    """Open the console at `url` in a browser page and log in as the test operator, as a person would;
    returns once the page's live feed is connected."""
    from playwright.sync_api import expect  # only the browser tests have a browser

    page.goto(url)
    page.fill("#login-form input[name=name]", OPERATOR)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#link")).to_have_text("live", timeout=15_000)


@contextmanager
def in_process_console(config: CentreConfig, settings: ConsoleConfig, key: Path | None) -> Iterator[Console]:
    """A console in this process (its broker may be nowhere), the test operator in its store; closed after."""
    console = Console(config, settings, key)
    try:
        console.store.set_operator(OPERATOR, hash_password(PASSWORD))
        yield console
    finally:
        console.close()


@contextmanager
def operator_client(console: Console) -> Iterator[TestClient]:
    """The console's web app in this process (FastAPI's TestClient), logged in as the test operator
    (who must be in its store), every request with the CSRF header the page sends."""
    with TestClient(create_app(console), headers={CSRF_HEADER: "1"}) as client:
        assert client.post("/api/login", json={"name": OPERATOR, "password": PASSWORD}).status_code == 200
        yield client


class ConsoleServer:
    def __init__(self, tmp: Path, broker_port: int, key: Path | None, lists: Mapping[str, str] | None = None,
                 prefix: str = "gatebox", **centre: object) -> None:  # fmt: skip
        """`lists`: the config's `lists` (name -> kind); `centre`: settings of its `console` section."""
        self.db = tmp / "centre" / "centre.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "console.log"
        sections: dict[str, object] = {
            "broker": {"port": broker_port, "topic_prefix": prefix, "keepalive_s": 5},
            # One MQTT session per console folder: a restart on the same folder picks its session up.
            "console": {
                "client_id": f"console-{tmp.name}"[:64],
                "db": str(self.db),
                "port": self.port,
                **centre,
            },
        }
        if lists:
            sections["lists"] = lists
        self.config = write_config(tmp / "centre.yaml", **sections)
        self.add_operator(OPERATOR, PASSWORD)
        args: list[str | Path] = ["--config", self.config, "centre", "serve"]
        if key:
            args += ["--key", key]
        self.process = start_cli(*args, log=self.log)
        wait_listening(self.process, self.port, 60, "console", self.log.read_text)

    def add_operator(self, name: str, password: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "edge", "--config", str(self.config), "centre", "operator", "add", name,
             "--password-stdin"],
            input=password + "\n", capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def client(self, login: bool = True, csrf: bool = True) -> httpx.Client:
        """`csrf`: send the header every state-changing request needs (what the page sends)."""
        client = httpx.Client(base_url=self.url, timeout=30, headers={CSRF_HEADER: "1"} if csrf else None)
        if login:
            response = client.post("/api/login", json={"name": OPERATOR, "password": PASSWORD},
                                   headers={CSRF_HEADER: "1"})  # fmt: skip
            assert response.status_code == 200, response.text
        return client

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"console did not stop on SIGTERM: {self.log.read_text()[-2000:]}") from None
