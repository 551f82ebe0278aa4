"""The console in a real browser (issue 9): headless Debian Chromium driven by Playwright against
`gatebox centre serve`, with a real box (`gatebox run` on the crowd clip) on a real mosquitto.

The box raises an alert → it appears on the page with its snapshot, shown urgent because its list's
kind is (`urgent`; the name says nothing) → the operator acknowledges it → the box's own state comes
back as acked. Then a plate list uploaded through the page is applied
by the box, a panic from another box goes to the top of the feed, the kind filter narrows the feed
to it, and that box is shown offline when it leaves. Screenshots are saved in
`test-artifacts/` (or $GATEBOX_TEST_ARTIFACTS)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from edge.protocol.signing import load_public_key
from tests.conftest import run_cli, start_cli, write_config
from tests.support.broker import Mosquitto
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from tests.support.console import OPERATOR, ConsoleServer, log_in_page
from tests.support.enrolled import EnrolledData
from tests.support.simbox import SimBox


@pytest.mark.slow
def test_operator_acks_a_box_alert_and_publishes_a_list(
    tmp_path: Path, broker: Mosquitto, crowd_clip: Path, enrolled_data: EnrolledData
) -> None:
    sync_api = playwright_or_skip()

    keys = tmp_path / "keys"
    assert run_cli("centre", "keygen", "--out", keys).returncode == 0
    # A prefix of its own: boxes other tests left retained on the shared broker stay out of the counts.
    # The watchlist made urgent, at the box and the centre alike: the page shows urgency by kind, not by name.
    lists = {"watchlist": "urgent", "plate_watchlist": "plates"}
    console = ConsoleServer(tmp_path, broker.port, keys / "centre_ed25519.pem", lists=lists, prefix="browsertest")
    data = enrolled_data.copy(tmp_path / "box", {"boy": "watchlist"})
    config = write_config(
        tmp_path / "box.yaml",
        box={"site": "maple-court", "box_id": "east-gate", "gate": "East gate"},
        broker={"port": broker.port, "keepalive_s": 5, "topic_prefix": "browsertest"},
        link={
            "centre_public_key": str(keys / "centre_ed25519.pub.pem"),
            "heartbeat_interval_s": 1,
            "resend_after_s": 2,
        },
        cameras=[{"name": "gate", "url": str(crowd_clip)}],
        lists=lists,
    )
    box = start_cli("--config", config, "--data-dir", data, "run", log=tmp_path / "box.log")
    plates = tmp_path / "plates.csv"
    plates.write_text("plate,subject_id,name\n粤B12345,stolen-van,white van\n", encoding="utf-8")
    neighbour: SimBox | None = None
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            log_in_page(page, console.url)

            first = page.locator("li.event", has_text="boy").first
            first.wait_for(timeout=120_000)  # the box's first alert, pushed to the page
            event_id = first.get_attribute("data-event-id")
            card = page.locator(f'li.event[data-event-id="{event_id}"]')
            sync_api.expect(card).to_contain_text("watchlist")
            sync_api.expect(card).to_contain_text("East gate")
            sync_api.expect(card).to_have_class(re.compile(r"\burgent\b"))
            snapshot = card.locator("img")
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=snapshot.element_handle(),
                                   timeout=15_000)  # fmt: skip
            card.locator("input[name=note]").fill("patrol sent")
            card.locator("button.ack").click()
            # Acked by the box itself: its alert_state came back through the broker.
            sync_api.expect(card.locator(".box-state")).to_have_text("acked", timeout=30_000)
            sync_api.expect(card).to_contain_text(f"acked by {OPERATOR}")
            health = page.locator('tr[data-box="maple-court/east-gate"]')
            sync_api.expect(health).to_have_attribute("data-status", "online")
            page.screenshot(path=str(ARTIFACTS / "console-alert-acked.png"), full_page=True)

            page.select_option("#upload-form select[name=list]", "plate_watchlist")
            sync_api.expect(page.locator("#upload-form input[name=photos]")).to_be_hidden()  # a `plates` list
            page.set_input_files("#upload-form input[name=plates]", str(plates))
            page.click("#upload-form button[type=submit]")
            sync_api.expect(page.locator("#upload-result")).to_contain_text("published plate_watchlist v1")
            listed = page.locator('#list-rows li[data-list="plate_watchlist"]')
            sync_api.expect(listed).to_contain_text("applied by 1/1 boxes", timeout=30_000)
            sync_api.expect(health).to_contain_text("plate_watchlist v1")

            neighbour = SimBox(
                broker.port,
                "maple-court",
                "north-gate",
                load_public_key(keys / "centre_ed25519.pub.pem"),
                prefix="browsertest",
            )
            neighbour.panic(device="btn-402")
            top = page.locator("li.event").first
            sync_api.expect(top).to_contain_text("PANIC", timeout=15_000)
            sync_api.expect(top).to_have_class(re.compile(r"\bpanic\b"))
            sync_api.expect(listed).to_contain_text("applied by 1/2 boxes", timeout=15_000)
            page.screenshot(path=str(ARTIFACTS / "console-panic-on-top.png"), full_page=True)

            page.select_option("#filters select[name=kind]", "panic")
            sync_api.expect(page.locator("li.event")).to_have_count(1)
            sync_api.expect(page.locator("li.event").first).to_contain_text("btn-402")
            neighbour.close()  # says goodbye: shown offline at once
            neighbour = None
            sync_api.expect(page.locator('tr[data-box="maple-court/north-gate"]')).to_have_attribute(
                "data-status", "offline", timeout=10_000
            )
            browser.close()
    finally:
        if neighbour:
            neighbour.close()
        box.send_signal(signal.SIGTERM)
        assert box.wait(60) == 0
        console.stop()
    listed = run_cli("--data-dir", data, "alerts").stdout
    assert f"{event_id}\tacked\twatchlist/boy\tgate" in listed and "patrol sent" in listed
    assert "Traceback" not in console.log.read_text()
