"""The camera preview and the panic receivers on the console page (issue 17), in a real browser: headless
Debian Chromium driven by Playwright against `gatebox centre serve`, with two real boxes (`gatebox run`) on
a real mosquitto.

The gate box watches the crowd clip as its camera and has two panic receivers: IP buttons over HTTP
(listening) and a serial radio that is not plugged in. The other box relays panic buttons only (no camera).
The Boxes table shows each receiver's state, the unplugged radio in the alarm colour with since when it is
down, and the panic-only box as such. The operator clicks Preview on the gate box's row: the console sends
the signed command, the box draws its camera's latest frame (the gate line, the faces found) and publishes
it, and the page shows the image with the time it was taken; asked again, the newer one replaces it. The
panic-only box answers that it has no camera. Screenshots are saved in `test-artifacts/`."""

from __future__ import annotations

import re
import signal
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import start_cli as start_box
from tests.conftest import write_config
from tests.support.broker import Mosquitto, free_port
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from tests.support.console import ConsoleServer, log_in_page
from tests.support.waiting import wait_for

PREFIX = "previewtest"
SITE, GATE, PANIC_ONLY = "maple-court", "east-gate", "north-gate"
ABSENT_RADIO = "/dev/ttyGATEBOX-not-plugged"
TOKEN = "token-for-the-ip-buttons-0042"
GATE_LINE = {"start": [0.05, 0.55], "end": [0.95, 0.55], "outside": [0.5, 0.95]}


def box_config(tmp_path: Path, name: str, broker_port: int, public_key: Path, camera: Path | None,
               serial: bool) -> tuple[Path, int]:  # fmt: skip
    """A box's config: the camera (a file, looped as a live one) if any, and its panic receivers."""
    (tmp_path / f"{name}.token").write_text(TOKEN)
    http_port = free_port()
    panic: dict[str, object] = {
        "devices": [{"device_id": f"btn-{name}", "household": "Wang", "address": "Bldg 3, 402"}],
        "http": {"port": http_port, "token_file": str(tmp_path / f"{name}.token")},
        "reconnect": {"initial_backoff_s": 0.5, "max_backoff_s": 2},
    }
    if serial:
        panic["serial"] = [{"port": ABSENT_RADIO}]
    config = write_config(
        tmp_path / f"{name}.yaml",
        box={"site": SITE, "box_id": name, "gate": name},
        broker={"port": broker_port, "keepalive_s": 5, "topic_prefix": PREFIX},
        link={"centre_public_key": str(public_key), "heartbeat_interval_s": 1},
        cameras=[{"name": "gate", "url": str(camera), "gate_line": GATE_LINE}] if camera else [],
        lists={"watchlist": "alert"},
        panic=panic,
    )
    return config, http_port


@pytest.mark.slow
def test_operator_sees_a_boxs_camera_preview_and_its_panic_receivers(
    tmp_path: Path, broker: Mosquitto, keys: tuple[Path, Path], crowd_clip: Path
) -> None:
    if not crowd_clip.exists():
        pytest.skip(f"{crowd_clip} not present (the test data in ../shared/data)")
    sync_api = playwright_or_skip()
    expect = sync_api.expect
    console = ConsoleServer(tmp_path, broker.port, keys[0], lists={"watchlist": "alert"}, prefix=PREFIX)
    boxes: list[subprocess.Popen[bytes]] = []
    try:
        for name, camera in ((GATE, crowd_clip), (PANIC_ONLY, None)):
            config, _ = box_config(tmp_path, name, broker.port, keys[1], camera, serial=camera is not None)
            boxes.append(start_box("--config", config, "--data-dir", tmp_path / name, "run",
                                   log=tmp_path / f"{name}.log"))  # fmt: skip
        with closing(console.client()) as api:  # the gate box's camera delivers frames before anyone asks for a preview

            def camera_running() -> bool:
                found = {b["box_id"]: b for b in api.get("/api/boxes").json()["boxes"]}
                return bool((found.get(GATE) or {}).get("cameras", {}).get("gate", {}).get("fps"))

            wait_for(camera_running, 180, "the gate box's camera to run")

        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            log_in_page(page, console.url)

            # The panic receivers: the IP buttons listening, the unplugged radio down (alarm colour, since when).
            gate_row = page.locator(f'tr[data-box="{SITE}/{GATE}"]')
            radio = gate_row.locator(f'.receiver[data-receiver="serial:{ABSENT_RADIO}"]')
            expect(radio).to_have_attribute("data-state", "down", timeout=30_000)
            expect(radio).to_have_class(re.compile(r"\bdown\b"))
            expect(radio).to_contain_text(re.compile(r"DOWN since \S+"))
            expect(radio).to_have_attribute("title", re.compile("cannot open"))
            expect(radio).to_have_css("background-color", "rgb(229, 56, 59)")  # the alarm colour (--panic)
            # (a port the test picked may be taken for a moment by another socket: the receiver is retried)
            ip_buttons = '.receiver[data-receiver^="http:"]'
            expect(gate_row.locator(ip_buttons)).to_have_attribute("data-state", "ok", timeout=30_000)
            panic_row = page.locator(f'tr[data-box="{SITE}/{PANIC_ONLY}"]')
            expect(panic_row.locator("td.cameras")).to_have_text("none (panic buttons only)", timeout=30_000)
            expect(panic_row.locator(ip_buttons)).to_have_attribute("data-state", "ok", timeout=30_000)
            expect(page.locator("#box-summary")).to_contain_text("1 panic receiver down", timeout=15_000)
            page.locator("#boxes").screenshot(path=str(ARTIFACTS / "console-panic-receivers.png"))

            # Preview: the box draws its camera's latest frame; the page shows it with when it was taken.
            gate_row.locator("button.preview").click()
            dialog = page.locator("#preview")
            expect(dialog).to_be_visible()
            expect(page.locator("#preview-box")).to_have_text(f"{SITE}/{GATE}")
            shown = dialog.locator('figure[data-camera="gate"][data-fresh="true"]')
            expect(shown).to_have_count(1, timeout=30_000)
            image = shown.locator("img")
            page.wait_for_function("img => img.complete && img.naturalWidth >= 320", arg=image.element_handle(),
                                   timeout=15_000)  # fmt: skip
            expect(shown.locator("figcaption")).to_contain_text(re.compile(r"gate · taken .+ · frame \d+×\d+"))
            expect(shown.locator("li", has_text="gate line: start [0.05, 0.55]")).to_have_count(1)
            expect(shown.locator("li", has_text=re.compile(r"^faces: \d+ found"))).to_have_count(1)
            expect(page.locator("#preview-status")).to_contain_text("answered")
            first_taken = float(shown.get_attribute("data-taken-at") or 0)
            first_src = image.get_attribute("src")
            page.screenshot(path=str(ARTIFACTS / "console-camera-preview.png"))

            # Asked again: the newer preview replaces the one shown.
            page.click("#preview-again")
            newer = dialog.locator('figure[data-camera="gate"][data-fresh="true"]')
            page.wait_for_function(
                "([taken]) => { const f = document.querySelector('#preview figure[data-camera=\"gate\"]');"
                " return f && f.dataset.fresh === 'true' && Number(f.dataset.takenAt) > taken; }",
                arg=[first_taken], timeout=30_000,
            )  # fmt: skip
            assert newer.locator("img").get_attribute("src") != first_src
            page.wait_for_function("img => img.complete && img.naturalWidth >= 320",
                                   arg=newer.locator("img").element_handle(), timeout=15_000)  # fmt: skip
            dialog.locator("button[type=submit]").click()
            expect(dialog).to_be_hidden()

            # The panic-only box has no camera, and says so.
            panic_row.locator("button.preview").click()
            answer = dialog.locator('figure[data-status="no_camera"][data-fresh="true"]')
            said = f"no camera: {SITE}/{PANIC_ONLY} has no camera: it relays panic buttons only"
            expect(answer).to_contain_text(said, timeout=30_000)
            expect(dialog.locator("img")).to_have_count(0)
            browser.close()
    finally:
        for box in boxes:
            box.send_signal(signal.SIGTERM)
        exits = [box.wait(60) for box in boxes]
        console.stop()
    assert exits == [0] * len(boxes), exits
    assert "Traceback" not in console.log.read_text()
    for name in (GATE, PANIC_ONLY):
        assert "Traceback" not in (tmp_path / f"{name}.log").read_text()
