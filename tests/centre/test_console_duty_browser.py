"""The duty officer's console in a real browser (issue 17): headless Debian Chromium driven by Playwright
against `gatebox centre serve` on a real mosquitto, with simulated boxes speaking the box protocol.

A face list is uploaded through the page (real photos, embedded by the console); a box's alerts on one
of its subjects become one card with a count, the subject's name, category and priority, the match
strength, and the snapshot beside the enrolled photo (both larger on click); the gates stand on the
site's plan with the alerts pinned; a panic from a site without a plan shows the household's contact,
flashes on the plain vector map and sounds until acknowledged, and on a page opened afresh the page
says the sound is blocked until clicked; the boxes' list versions and a version published from the CLI show;
the history is searched and exported as CSV. The screenshot of the map and the matched pair is
`docs/console.png` (rewritten with GATEBOX_UPDATE_DOCS=1; every run saves it in test-artifacts/)."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from centre.config import CentreConfig
from centre.lists import build, publish
from edge.alerts import face_snapshot
from edge.config import RecognitionConfig
from edge.detectors.dlib_hog import DlibHogFaceDetector
from edge.enroll import embed_photo, embedder_for
from edge.protocol.alert import Alert, Location
from edge.protocol.lists import ListKind
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.panic import PanicEvent
from edge.protocol.signing import load_public_key
from tests.conftest import REPO
from tests.support.broker import Mosquitto
from tests.support.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from tests.support.console import OPERATOR, ConsoleServer, log_in_page
from tests.support.simbox import SimBox

PREFIX = "dutytest"
SITE, EAST, NORTH = "maple-court", "east-gate", "north-gate"
PLAN_BOUNDS = {"north": 31.2320, "south": 31.2290, "west": 121.4720, "east": 121.4760}
EAST_GATE = Location(site_name="Maple Court", gate="East gate", lat=31.2304, lon=121.4752, grid_cell="HP-0412")
OAK = Location(site_name="Oak Park", gate="Oak gate", lat=31.2410, lon=121.4901)
SUBJECT, NAME = "kit-h", "Kit Harington"
CONTACT = "daughter Wang Min 139-0000-1111"
DOCS_SCREENSHOT = REPO / "docs" / "console.png"
MAX_SCREENSHOT_BYTES = 300_000


def site_plan(path: Path) -> Path:
    """A small site plan (what a community's own drawing would be): buildings, roads, the gates' road."""
    buildings = "".join(
        f'<rect x="{x}" y="{y}" width="90" height="60" fill="#2b3947" stroke="#51657a"/>'
        f'<text x="{x + 45}" y="{y + 36}" fill="#9fb3c8" font-size="16" text-anchor="middle">Bldg {n}</text>'
        for n, (x, y) in enumerate([(120, 90), (260, 90), (400, 90), (120, 230), (260, 230), (400, 230)], 1)
    )
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 480">'
        '<rect width="600" height="480" fill="#16212b"/>'
        '<path d="M0 190 H600 M220 0 V480 M560 0 V480" stroke="#3b4d5f" stroke-width="22" fill="none"/>'
        f'{buildings}<rect x="40" y="360" width="150" height="80" fill="#1f3b2a"/>'
        '<text x="115" y="405" fill="#7fb38f" font-size="16" text-anchor="middle">garden</text></svg>'
    )
    return path


def face_crop(photo: Path) -> bytes:
    """The face in `photo` as a box's alert carries it: a padded crop, at most 200 px, JPEG."""
    image = cv2.imread(str(photo))
    (x1, y1, x2, y2) = DlibHogFaceDetector(1600, 1).detect(image).xyxy[0].astype(int)
    pad = int((x2 - x1) * 0.4)
    crop = image[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    return face_snapshot(np.ascontiguousarray(crop))


def photos_zip(photo: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(photo, f"elders/{SUBJECT}/{photo.name}")
    return buffer.getvalue()


def small_png(png: bytes, out: Path) -> None:
    """A screenshot small enough for the README: 256 colours."""
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


@pytest.mark.slow
def test_duty_officer_sees_who_where_and_how_strong_and_hands_over_the_record(
    tmp_path: Path, broker: Mosquitto, keys: tuple[Path, Path], faces_dir: Path
) -> None:
    sync_api = playwright_or_skip()
    expect = sync_api.expect
    reference, seen = faces_dir / "kit_harington" / "kit1.jpg", faces_dir / "kit_harington" / "kit2.jpg"
    # The distance the box would find between the two photos, with the boxes' own embedder.
    embedder = embedder_for(RecognitionConfig(), None)
    distance = round(float(np.linalg.norm(embed_photo(embedder, reference) - embed_photo(embedder, seen))), 4)
    snapshot = base64.b64encode(face_crop(seen)).decode()
    lists: dict[str, ListKind] = {"missing_elders": "urgent", "watchlist": "alert", "plate_watchlist": "plates"}
    console = ConsoleServer(
        tmp_path, broker.port, keys[0], lists=lists, prefix=PREFIX,
        site_plans={SITE: {"image": str(site_plan(tmp_path / "plan.svg")), **PLAN_BOUNDS}},
    )  # fmt: skip
    meta = tmp_path / "meta.csv"
    meta.write_text(f"subject_id,name,category,priority\n{SUBJECT},{NAME},dementia,3\n")
    (tmp_path / "elders.zip").write_bytes(photos_zip(reference))
    public = load_public_key(keys[1])
    east = SimBox(broker.port, SITE, EAST, public, prefix=PREFIX)
    oak = SimBox(broker.port, "oak-park", NORTH, public, prefix=PREFIX)

    def alert(event_id: str) -> Alert:
        raised = Alert(
            event_id=event_id, kind="face_match", list="missing_elders", list_version="v1", subject_id=SUBJECT,
            site=SITE, box_id=EAST, camera="gate", ts=datetime.now(timezone.utc), frame=15, track_id=3,
            score=round(1 - distance, 4), distance=distance, matching_frames=4, bbox=(10, 10, 90, 110),
            snapshot_jpeg_b64=snapshot, location=EAST_GATE,
        )  # fmt: skip
        east.publish("alert", raised.to_json())
        return raised

    try:
        with sync_api.sync_playwright() as playwright:
            # The default everywhere, said here so the test does not depend on it: no sound before a click.
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[*CHROMIUM_ARGS, "--autoplay-policy=document-user-activation-required"],
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
            log_in_page(page, console.url)

            # A face list through the page: its subject's details and first photo are kept by the centre.
            page.select_option("#upload-form select[name=list]", "missing_elders")
            page.select_option("#upload-form select[name=mode]", "replace")
            page.set_input_files("#upload-form input[name=photos]", str(tmp_path / "elders.zip"))
            page.set_input_files("#upload-form input[name=meta]", str(meta))
            page.click("#upload-form button[type=submit]")
            expect(page.locator("#upload-result")).to_contain_text("published missing_elders v1", timeout=60_000)

            # The box reports what it holds: a version from this console and one from elsewhere.
            east.heartbeat(lists={"missing_elders": 1, "watchlist": 7})
            oak.heartbeat()
            east_row = page.locator(f'tr[data-box="{SITE}/{EAST}"]')
            expect(east_row.locator("td.held")).to_have_text("missing_elders v1, watchlist v7", timeout=15_000)
            expect(page.locator('#list-rows li[data-list="watchlist"]')).to_contain_text(
                "boxes hold v7 (not published from this console)"
            )

            first = alert("a1")
            card = page.locator(f'li.event[data-event-id="{first.event_id}"]')
            expect(card).to_contain_text(NAME, timeout=15_000)
            for shown in (SUBJECT, "dementia", "priority 3", "East gate", "grid HP-0412"):
                expect(card).to_contain_text(shown)
            expect(card).to_have_class(re.compile(r"\burgent\b"))
            label = card.locator(".tag.strength")
            expect(label).to_have_text(re.compile(r"^(strong|good|weak) match$"))
            expect(label).to_have_attribute(
                "title", re.compile(rf"distance {distance:.2f}; the box's strong limit 0\.45")
            )
            for picture in ("img.snapshot", "img.reference"):
                page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                       arg=card.locator(picture).element_handle(), timeout=15_000)  # fmt: skip

            # Both larger on click.
            card.locator(".pictures").click()
            viewer = page.locator("#viewer")
            expect(viewer).to_be_visible()
            expect(viewer.locator("img")).to_have_count(2)
            for image in viewer.locator("img").element_handles():
                page.wait_for_function("img => img.complete && img.width >= 300", arg=image, timeout=15_000)
            expect(viewer).to_contain_text(f"enrolled: {NAME} (missing_elders)")
            page.screenshot(path=str(ARTIFACTS / "console-matched-pair.png"))
            viewer.locator("button").click()
            expect(viewer).to_be_hidden()

            # The same person's next alerts in this pass join the card.
            alert("a2")
            alert("a3")
            expect(card).to_have_attribute("data-count", "3", timeout=15_000)
            expect(card.locator(".count")).to_have_text("×3")
            expect(page.locator("li.event", has_text=NAME)).to_have_count(1)

            # The map: the site's plan, its gate where the alerts said, the three alerts pinned at it.
            site_map = page.locator(f'#map-view svg[data-site="{SITE}"]')
            expect(site_map.locator("image.plan")).to_have_count(1)
            expect(site_map.locator(f'g.gate[data-box="{SITE}/{EAST}"]')).to_contain_text("East gate")
            expect(site_map.locator("g.pin.urgent")).to_have_count(3)
            expect(page.locator("#map-note")).to_have_text("site plan")
            png = page.screenshot()
            (ARTIFACTS / "console-map-and-pair.png").write_bytes(png)
            small_png(png, ARTIFACTS / "console.png")
            assert (ARTIFACTS / "console.png").stat().st_size < MAX_SCREENSHOT_BYTES
            if os.environ.get("GATEBOX_UPDATE_DOCS") == "1":
                small_png(png, DOCS_SCREENSHOT)

            card.locator("input[name=note]").fill("patrol sent to the east gate")
            card.locator("button.ack").click()
            expect(card.locator(".box-state")).to_have_text("acked", timeout=30_000)  # all three, by the box

            # A panic from a site without a plan: its contact on the card, flashing on the vector map, sounding.
            pressed = datetime.now(timezone.utc)
            panic = PanicEvent(
                event_id="p1", message_id="p1:1", kind="panic", device_id="btn-402", household="Wang",
                address="Bldg 3, 402", contact=CONTACT, pressed_at=pressed, received_at=pressed, sequence=1,
                presses=1, site="oak-park", box_id=NORTH, location=OAK,
            )  # fmt: skip
            oak.publish("panic", panic.to_json())
            top = page.locator("li.event").first
            expect(top).to_contain_text("PANIC", timeout=15_000)
            expect(top.locator(".contact")).to_have_text(f"contact: {CONTACT}")
            oak_map = page.locator('#map-view svg[data-site="oak-park"]')
            expect(oak_map.locator("g.pin.panic.flash")).to_have_count(1)
            expect(page.locator("#map-note")).to_have_text("vector view (no plan configured)")
            # the gate, placed by the panic's location
            expect(oak_map.locator(f'g.gate[data-box="oak-park/{NORTH}"]')).to_contain_text("Oak gate")
            expect(oak_map.locator(".scale")).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "console-panic-map.png"))
            # Sounding: the operator clicked on this page (logging in), so the browser lets it play.
            page.wait_for_function("() => Number(document.body.dataset.alarmBeeps || 0) >= 2", timeout=15_000)
            expect(page.locator("#sound")).to_be_hidden()

            # The console opened afresh (the browser restarted at a shift change, the session kept): nobody
            # has clicked on it yet, so the browser blocks the tone; the page says so, and a click lets it sound.
            fresh = browser.new_context(storage_state=page.context.storage_state(), viewport={"width": 1440,
                                        "height": 900})  # fmt: skip
            desk = fresh.new_page()
            # Told by the page's console message: whatever Playwright reads of a page counts as a click there
            # (it would let the page play sound), so nothing is read before the page says it is blocked.
            with desk.expect_console_message(lambda m: "blocked the alarm tone" in m.text, timeout=15_000):
                desk.goto(console.url)
            assert desk.locator("#sound").is_visible() and desk.locator("body").get_attribute("data-alarm") == "blocked"
            assert desk.locator("#sound").text_content() == "sound blocked — click to enable"
            desk.screenshot(path=str(ARTIFACTS / "console-sound-blocked.png"))
            desk.click("#sound")
            expect(desk.locator("#sound")).to_be_hidden()
            beeps = "() => Number(document.body.dataset.alarmBeeps || 0) >= 2"
            desk.wait_for_function(beeps, timeout=15_000)  # and it repeats
            desk.locator("li.event.panic button.ack").click()
            for view in (desk, page):  # acknowledged: silent, and the pin stops flashing, on every open page
                expect(view.locator("body")).to_have_attribute("data-alarm", "off", timeout=15_000)
                expect(view.locator('#map-view svg[data-site="oak-park"] g.pin.flash')).to_have_count(0)
            fresh.close()

            # A version published from the CLI (no --db): the page says it is in force, and from elsewhere.
            plates = tmp_path / "plates.csv"
            plates.write_text("plate,subject_id,name\n粤B12345,van,white van\n", encoding="utf-8")
            bundle = tmp_path / "plates-v3.gbl"
            build(CentreConfig(lists=lists), "plate_watchlist", 3, None, None, bundle, plates)
            publish(BrokerConfig(port=broker.port, topic_prefix=PREFIX), keys[0], bundle)
            expect(page.locator('#list-rows li[data-list="plate_watchlist"]')).to_contain_text(
                "v3 (1 entries, published elsewhere", timeout=15_000
            )

            # The history: found by the subject's name, exported with how each was disposed.
            page.click('#tabs .tab[data-view="history"]')
            page.fill("#history-form input[name=subject]", "harington")
            page.click("#history-form button[type=submit]")
            expect(page.locator("#history-rows tr")).to_have_count(3)
            expect(page.locator("#history-rows")).to_contain_text(f"acked by {OPERATOR}")
            with page.expect_download() as download:
                page.click("#export")
            rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
            assert sorted(r["event_id"] for r in rows) == ["a1", "a2", "a3"]
            assert {(r["name"], r["state"], r["acked_by"], r["ack_note"]) for r in rows} == {
                (NAME, "acked", OPERATOR, "patrol sent to the east gate")
            }
            browser.close()
    finally:
        east.close()
        oak.close()
        console.stop()
    assert "Traceback" not in console.log.read_text()
