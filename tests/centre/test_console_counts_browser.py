"""The console's passage counts in a real browser (issue 18): headless Debian Chromium driven by Playwright
against `gatebox centre serve` on a real mosquitto, with simulated boxes sending the box's `passage` messages.

People and vehicles go in and out of two gates → the page shows each gate's counts for today, the
last 24 hours as bars in the hours they passed (in and out), updates when another passage arrives, and a
plate search over the passage log finds the vehicle. The screenshot is saved in test-artifacts/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.protocol.messages import Passage
from tests.support.broker import Mosquitto
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from tests.support.console import ConsoleServer, log_in_page
from tests.support.simbox import SimBox

PREFIX = "countstest"
SITE, EAST, WEST = "maple-court", "east-gate", "west-gate"
HOUR = 3600


def passage(box: SimBox, n: int, camera: str, ts: float, subject: str, direction: str, plate: str | None = None
            ) -> Passage:  # fmt: skip
    sent = Passage(passage_id=f"{box.box_id}-{n}", site=box.site, box_id=box.box_id, camera=camera, ts=ts,
                   subject=subject, direction=direction, plate=plate,  # type: ignore[arg-type]
                   colour="blue" if plate else None)  # fmt: skip
    box.publish("passage", sent.model_dump_json(by_alias=True))
    return sent


def today_since(now: float) -> float:
    """The first hour the centre counts as today (its hourly totals since local midnight)."""
    local = time.localtime(now)
    midnight = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
    return midnight // HOUR * HOUR


def gate_counts(passages: list[Passage], now: float) -> dict[str, dict[str, int]]:
    """Each gate's passages today (every gate of the last 24 h is listed, at 0 when none passed today)."""
    counts: dict[str, dict[str, int]] = {}
    for p in passages:
        gate = counts.setdefault(f"{p.site}/{p.box_id}/{p.camera}", {})
        if p.ts // HOUR * HOUR >= today_since(now):
            gate[f"{p.subject}_{p.direction}"] = gate.get(f"{p.subject}_{p.direction}", 0) + 1
    return counts


def hour_bars(passages: list[Passage]) -> dict[tuple[str, str], str]:
    """(hour, direction) -> how many passed: the bars the chart of all gates should draw."""
    bars: dict[tuple[str, str], int] = {}
    for p in passages:
        key = (str(int(p.ts // HOUR * HOUR)), str(p.direction))
        bars[key] = bars.get(key, 0) + 1
    return {key: str(count) for key, count in bars.items()}


@pytest.mark.slow
def test_the_page_counts_people_and_vehicles_per_gate_and_hour_and_finds_a_plate(
    tmp_path: Path, broker: Mosquitto, keys: tuple[Path, Path]
) -> None:
    sync_api = playwright_or_skip()
    expect = sync_api.expect
    console = ConsoleServer(tmp_path, broker.port, keys[0], prefix=PREFIX)
    east = SimBox(broker.port, SITE, EAST, prefix=PREFIX)
    west = SimBox(broker.port, SITE, WEST, prefix=PREFIX)
    now = time.time()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            log_in_page(page, console.url)
            expect(page.locator("#passage-gates tr")).to_have_count(0)

            sent = [
                passage(east, 1, "gate", now - 60, "person", "in"),
                passage(east, 2, "gate", now - 30, "person", "in"),
                passage(east, 3, "gate", now - 3 * HOUR, "person", "out"),
                passage(east, 4, "lane", now - HOUR, "vehicle", "in", plate="HU7741"),
                passage(east, 5, "lane", now - 20, "vehicle", "out", plate="KA1002"),
                passage(west, 1, "gate", now - 5 * HOUR, "person", "out"),
                passage(east, 1, "gate", now - 60, "person", "in"),  # a resent copy: counted once
            ][:-1]
            expected = gate_counts(sent, now)
            rows = page.locator("#passage-gates tr")
            expect(rows).to_have_count(len(expected), timeout=15_000)  # pushed to the page: no reload
            for gate, kinds in expected.items():
                row = page.locator(f'#passage-gates tr[data-gate="{gate}"]')
                for kind in ("person_in", "person_out", "vehicle_in", "vehicle_out"):
                    expect(row.locator(f"td.{kind}")).to_have_text(str(kinds.get(kind, 0)))

            def bars() -> dict[tuple[str, str], str]:
                shown = page.locator("#passage-chart rect.bar").evaluate_all(
                    "bars => bars.map(b => [b.dataset.hour, b.dataset.direction, b.dataset.count])"
                )
                return {(hour, direction): count for hour, direction, count in shown}

            assert bars() == hour_bars(sent)

            # One gate's chart: only its own hours.
            page.select_option("#passage-chart-gate", f"{SITE}/{WEST}/gate")
            west_hours = hour_bars([p for p in sent if p.box_id == WEST])
            page.wait_for_function("n => document.querySelectorAll('#passage-chart rect.bar').length === n",
                                   arg=len(west_hours), timeout=15_000)  # fmt: skip
            assert bars() == west_hours
            page.select_option("#passage-chart-gate", "")

            # Another one arrives: the counts and the chart follow.
            sent.append(passage(west, 2, "gate", time.time(), "person", "in"))
            west_row = page.locator(f'#passage-gates tr[data-gate="{SITE}/{WEST}/gate"]')
            expect(west_row.locator("td.person_in")).to_have_text("1", timeout=15_000)
            page.wait_for_function("n => document.querySelectorAll('#passage-chart rect.bar').length === n",
                                   arg=len(hour_bars(sent)), timeout=15_000)  # fmt: skip
            assert bars() == hour_bars(sent)

            # The passage log: a plate's first letters (any case) find the vehicle.
            page.fill("#passage-search input[name=plate]", "hu77")
            page.click("#passage-search button[type=submit]")
            found = page.locator("#passage-rows tr")
            expect(found).to_have_count(1, timeout=15_000)
            expect(found.locator("td.plate")).to_have_text("HU7741 (blue)")
            expect(found).to_contain_text(f"{SITE}/{EAST}/lane")
            expect(found).to_contain_text("in")
            # Everything that went out at the east gate's camera, newest first.
            page.fill("#passage-search input[name=plate]", "")
            page.select_option("#passage-search select[name=gate]", f"{SITE}/{EAST}/gate")
            page.select_option("#passage-search select[name=direction]", "out")
            page.click("#passage-search button[type=submit]")
            expect(page.locator("#passage-found")).to_have_text("1 found", timeout=15_000)
            expect(found).to_have_attribute("data-subject", "person")
            page.locator("#passages").screenshot(path=str(ARTIFACTS / "console-passages.png"))
            browser.close()
    finally:
        east.close()
        west.close()
        console.stop()
