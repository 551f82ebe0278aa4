"""Centre console under load (issue 9): 200 simulated boxes on a loopback mosquitto heartbeat and
send alerts and panics (about 5% of sends exact resends, as a box resends what it has no receipt
for) to `gatebox centre serve` until 10,000 distinct events are stored, while an operator's page
is open (its server-sent events stream and the refetches it triggers) and the page's requests are
timed: under load, then idle at 10,000 stored events (the boxes still heartbeating). Then checks
that every event was confirmed to its box and stored exactly once, that every box shows online,
and times publish -> visible in the page's feed for single alerts.

    .venv/bin/python benchmarks/console_bench.py [--boxes 200] [--events 10000] [--rate 250] [--json PATH]
        [--browser [--browser-load-panics 30] [--browser-idle-panics 20] [--browser-refresh-s 2]
                   [--browser-nice 10]]

The boxes run in a child process of their own, so the timings taken here (the operator's side)
do not queue behind the boxes' threads. Exits 1 if an event is missing, duplicated or unconfirmed,
a box is not online, a request failed, or the console logged an error; with --strict also when the
feed's p95 misses the 200 ms target. Writes nothing into the repository (--json PATH aside).

--browser also opens the page in headless Chromium (/usr/bin/chromium, driven by Playwright in a
child process of its own), logged in, for the whole run: panics spread over the load and then one
at a time when idle are timed from publish to their card (`li.event[data-event-id=..]`) in the
page's DOM (a MutationObserver in the page stamps it; both clocks are this machine's); the page's
own SSE-driven refetches of the feed and the box table are timed (fetch, then render), a feed
re-render (`refreshEvents()` and a forced layout) is timed every --browser-refresh-s, and the
main thread's long tasks and busy time (Chrome's performance metrics) are taken under load and
idle; at the end the box table must list every box, online, with live updates never dropped.
Problems there (a panic never shown, an error on the page) exit 1 too. The browser stands in for
the operator's own PC: its processes run at --browser-nice, so that they take the CPUs the
console and the boxes leave and disturb the other figures less (its extra requests still load
the console); on a small machine its own figures include waiting for those CPUs.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from edge.protocol.signing import generate_keypair, load_public_key  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.console import ConsoleServer  # noqa: E402
from tests.support.simbox import SimBox  # noqa: E402

FEED_TARGET_MS = 200
LISTS = ("watchlist", "missing_elders", "at_risk_elders")
PAGE = {"state": "open", "limit": "200"}  # what the page's feed asks for by default (console.js)
ENDPOINTS = {  # name -> (what the table calls it, path, query: the page's own calls)
    "feed": ("GET /api/events?state=open&limit=200", "/api/events", PAGE),
    "panics": ("GET /api/events?kind=panic&...", "/api/events", {**PAGE, "kind": "panic"}),
    "box": ("GET /api/events?site=..&box_id=..&...", "/api/events", PAGE),
    "boxes": ("GET /api/boxes", "/api/boxes", {}),
    "lists": ("GET /api/lists", "/api/lists", {}),
}


def identity(index: int, per_site: int) -> tuple[str, str]:
    return f"site-{index // per_site:02d}", f"box-{index % per_site:02d}"


# --- the boxes (a child process) ----------------------------------------------------------------


def fleet(conn, port: int, public_key: str, boxes: int, per_site: int, heartbeat_s: float) -> None:
    """Connects the boxes, heartbeats until closed and answers the parent's commands over `conn`."""
    key = load_public_key(Path(public_key))
    sims = [SimBox(port, *identity(i, per_site), key, keepalive=30) for i in range(boxes)]
    stop = threading.Event()
    beats = threading.Thread(target=heartbeat, args=(sims, heartbeat_s, stop), daemon=True)
    beats.start()
    expected: list[set[str]] = [set() for _ in sims]
    conn.send(("ready", None))
    while True:
        command, arg = conn.recv()
        if command == "load":
            conn.send(("loaded", load(sims, expected, **arg)))
        elif command == "receipts":
            conn.send(("receipts", wait_receipts(sims, expected, arg)))
        elif command == "alert":  # one alert for the publish -> feed timing
            index, event_id, seed = arg
            published = time.time()
            sims[index].alert(subject="s-probe", event_id=event_id, seed=seed)
            expected[index].add(event_id)
            conn.send(("published", published))
        elif command == "panic":  # one panic for the publish -> on the browser's page timing
            index, event_id = arg
            published = time.time()
            panic = sims[index].panic(device="btn-probe", event_id=event_id)
            expected[index].add(panic.message_id)
            conn.send(("published", published))
        elif command == "close":
            break
    stop.set()
    beats.join(5)
    for box in sims:
        box.close()
    conn.send(("closed", None))


def heartbeat(sims: list[SimBox], period_s: float, stop: threading.Event) -> None:
    """Each box heartbeats every `period_s`, the boxes' beats spread evenly over the period."""
    started = time.monotonic()
    step = period_s / len(sims)
    n = 0
    while not stop.is_set():
        due = started + n * step
        if (wait := due - time.monotonic()) > 0 and stop.wait(wait):
            return
        box = sims[n % len(sims)]
        box.heartbeat(fps=25.0, depth=0, lists={name: 3 for name in LISTS})
        n += 1


def load(sims: list[SimBox], expected: list[set[str]], events: int, rate: float, resend_share: float,
         panic_share: float, seed: int, probes: int = 0) -> dict[str, object]:  # fmt: skip
    """Send until `events` distinct events are out, at `rate` sends/s over random boxes; `probes` of
    them are panics spread evenly over the load, timed to the browser's page (--browser)."""
    rng = random.Random(seed)
    probe_at = deque(round((k + 0.5) * events / probes) for k in range(probes))
    probe_ids: list[str] = []
    recent: deque[tuple[int, str, str]] = deque(maxlen=1000)  # (box, leaf, payload): what a box may resend
    records: list[tuple[str, int, str, float]] = []  # (event_id, box, kind, first sent at)
    resends = panics = 0
    started, t0 = time.time(), time.monotonic()
    n = 0
    while len(records) < events:
        if (wait := t0 + n / rate - time.monotonic()) > 0:
            time.sleep(wait)
        n += 1
        if probe_at and len(records) >= probe_at[0]:
            probe_at.popleft()
            index, event_id = rng.randrange(len(sims)), uuid.uuid4().hex
            sent = time.time()
            panic = sims[index].panic(device="btn-probe", event_id=event_id)
            expected[index].add(panic.message_id)
            recent.append((index, "panic", panic.to_json()))
            records.append((event_id, index, "panic", sent))
            probe_ids.append(event_id)
            panics += 1
            continue
        if recent and rng.random() < resend_share:
            index, leaf, payload = rng.choice(recent)
            sims[index].publish(leaf, payload)
            resends += 1
            continue
        index = rng.randrange(len(sims))
        box, event_id = sims[index], uuid.uuid4().hex
        sent = time.time()
        if rng.random() < panic_share:
            panic = box.panic(device=f"btn-{rng.randrange(4)}", event_id=event_id)
            payload, leaf, receipt = panic.to_json(), "panic", panic.message_id
            panics += 1
        else:
            alert = box.alert(subject=f"s{rng.randrange(97)}", list_name=rng.choice(LISTS), event_id=event_id,
                              seed=rng.randrange(64))  # fmt: skip
            payload, leaf, receipt = alert.to_json(), "alert", event_id
        expected[index].add(receipt)
        recent.append((index, leaf, payload))
        records.append((event_id, index, leaf, sent))
    return {"records": records, "sends": n, "resends": resends, "panics": panics, "probes": probe_ids,
            "started": started, "ended": time.time(), "send_s": time.monotonic() - t0}  # fmt: skip


def wait_receipts(sims: list[SimBox], expected: list[set[str]], timeout_s: float) -> dict[str, object]:
    """Until every box holds a receipt for everything it sent (a box forgets an event only then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = sum(len(want - box.receipts) for box, want in zip(sims, expected, strict=True))
        if not missing or time.monotonic() > deadline:
            return {"missing": missing, "at": time.time()}
        time.sleep(0.05)


# --- the operator's page in a real browser (--browser; a child process) -------------------------

CHROMIUM = "/usr/bin/chromium"
# As in tests/centre/test_console_browser.py: root in a container, a closed network, no calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
# Before the page's own script: when each panic card first enters the DOM (a MutationObserver,
# stamped in the same microtask checkpoint as the render), and the main thread's long tasks.
INIT_JS = """(() => {
  const bench = { panics: [], longtasks: [], refresh: { events: [], boxes: [] }, lastApi: {}, linkDowns: [],
                  audio: { created: 0, closed: 0 } };
  window.__bench = bench;
  if (window.AudioContext) {  // the page's alarm() sounds each new panic
    window.AudioContext = class extends window.AudioContext {
      constructor(...args) { super(...args); bench.audio.created++; }
      close() { bench.audio.closed++; return super.close(); }
    };
  }
  const seen = new Set();
  new MutationObserver((records) => {
    const now = Date.now();
    for (const record of records) for (const node of record.addedNodes) {
      if (node.nodeType !== 1 || !node.matches("li.event.panic") || seen.has(node.dataset.eventId)) continue;
      seen.add(node.dataset.eventId);
      bench.panics.push([node.dataset.eventId, now]);
    }
  }).observe(document, { childList: true, subtree: true });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) bench.longtasks.push([performance.timeOrigin + e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
    bench.longtaskObserved = true;
  } catch (e) {
    bench.longtaskObserved = false;
  }
  bench.take = () => { const out = bench.panics; bench.panics = []; return out; };
})();"""
# After login: time the page's own refetches (console.js's top-level functions are globals, and its
# calls look them up at call time), split into the fetch (api(): request and JSON) and the render.
WRAP_JS = """() => {
  const bench = window.__bench;
  const api = window.api, setLink = window.setLink;
  const keyOf = (path) => String(path).startsWith("/api/events?") ? "events" : path === "/api/boxes" ? "boxes" : null;
  window.api = async function (path, options) {
    const t0 = performance.now();
    const body = await api(path, options);
    const key = keyOf(path);
    if (key) bench.lastApi[key] = { t0, t1: performance.now() };
    return body;
  };
  window.setLink = (up) => { if (!up) bench.linkDowns.push(Date.now()); return setLink(up); };
  for (const [key, name] of [["events", "refreshEvents"], ["boxes", "refreshBoxes"]]) {
    const refresh = window[name];
    bench[name] = refresh;
    window[name] = async function () {
      const t0 = performance.now();
      try {
        return await refresh();
      } finally {
        const t1 = performance.now(), fetched = bench.lastApi[key];
        const fetchMs = fetched && fetched.t0 >= t0 ? fetched.t1 - fetched.t0 : null;
        bench.refresh[key].push([performance.timeOrigin + t0, t1 - t0, fetchMs]);
      }
    };
  }
  return typeof bench.refreshEvents === "function" && typeof bench.refreshBoxes === "function";
}"""
# One feed re-render on demand: the page's own refreshEvents(), then a forced style and layout.
TIMED_REFRESH_JS = """async () => {
  const bench = window.__bench;
  const t0 = performance.now();
  await bench.refreshEvents();
  const t1 = performance.now();
  void document.body.offsetHeight;
  const t2 = performance.now(), fetched = bench.lastApi.events;
  const afterFetch = fetched && fetched.t0 >= t0 ? t2 - fetched.t1 : null;
  return [performance.timeOrigin + t0, t2 - t0, afterFetch, t2 - t1];
}"""
BOXES_SHOWN_JS = """(count) => {
  const rows = [...document.querySelectorAll("#box-rows tr")];
  return rows.length === count && rows.every((row) => row.dataset.status === "online");
}"""
PAGE_STATE_JS = """() => {
  const rows = [...document.querySelectorAll("#box-rows tr")];
  const bench = window.__bench;
  return {
    rows: rows.length, online: rows.filter((row) => row.dataset.status === "online").length,
    link: document.querySelector("#link").textContent, link_downs: bench.linkDowns.length,
    cards: document.querySelectorAll("li.event").length,
    panic_cards: document.querySelectorAll("li.event.panic").length,
    elements: document.getElementsByTagName("*").length, audio: bench.audio,
    longtask_observed: bench.longtaskObserved, longtasks: bench.longtasks, refresh: bench.refresh,
  };
}"""
# Chrome's performance metrics of the page: seconds in tasks (wall clock) and of them in script, layout
# and style; the main thread's and the renderer process's CPU seconds; this script's DevTools calls.
CDP_METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "ThreadTime", "ProcessTime",
               "DevToolsCommandDuration", "LayoutCount", "JSHeapUsedSize", "AudioHandlers")  # fmt: skip


def browse(conn, url: str, refresh_every_s: float, nice: int) -> None:
    """Headless Chromium on the console's page, logged in, until told to finish; answers the
    parent's commands over `conn`, and meanwhile times a feed re-render every `refresh_every_s`.
    At `nice`, with Playwright's driver and Chromium after it: the browser stands in for the
    operator's own PC, so it takes the CPUs the console and the boxes leave."""
    import traceback

    os.nice(nice)

    from playwright.sync_api import sync_playwright

    from tests.support.console import OPERATOR, PASSWORD

    errors: list[str] = []
    notes: Counter[str] = Counter()  # what the page logged that is this machine's, not the console's
    logged_in = threading.Event()

    def on_console(message) -> None:
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource"):  # on_response has the page's own requests
            if (where := message.location.get("url", "")).endswith("/favicon.ico"):  # the browser's: no icon
                notes[f"{message.text.split('status of ')[-1]} {where.removeprefix(url.rstrip('/'))}"] += 1
        elif "AudioContext" in message.text:  # no sound device in a container
            notes["console: " + message.text] += 1
        else:
            errors.append(f"console error: {message.text}")

    def on_response(response) -> None:
        path = response.url.removeprefix(url.rstrip("/"))
        if response.status < 400:
            return
        if not logged_in.is_set():  # the page asks /api/me first
            notes[f"HTTP {response.status} {response.request.method} {path.split('?')[0]}"] += 1
        else:
            errors.append(f"HTTP {response.status} {response.request.method} {path}")

    def on_failed(request) -> None:
        if request.failure == "net::ERR_ABORTED" and request.resource_type == "image":
            notes["image load aborted (its card was re-rendered)"] += 1  # lazy snapshots of replaced cards
        else:
            errors.append(f"request failed: {request.failure} {request.method} {request.url}")

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
                page.on("console", on_console)
                page.on("response", on_response)
                page.on("requestfailed", on_failed)
                page.add_init_script(INIT_JS)
                page.goto(url)
                page.fill("#login-form input[name=name]", OPERATOR)
                page.fill("#login-form input[name=password]", PASSWORD)
                page.click("#login-form button[type=submit]")
                page.wait_for_function("() => document.querySelector('#link').textContent === 'live'", timeout=30_000)
                logged_in.set()
                if not page.evaluate(WRAP_JS):
                    raise RuntimeError("refreshEvents/refreshBoxes are not reachable as globals of the page")
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")

                def metrics() -> dict[str, float]:
                    got = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                    return {"at": time.time(), **{name: got.get(name, math.nan) for name in CDP_METRICS}}

                conn.send(("ready", {"agent": page.evaluate("navigator.userAgent"), "nice": nice_chromium(nice)}))
                browse_loop(conn, page, metrics, refresh_every_s, errors, notes)
            finally:
                browser.close()
    except BaseException:
        conn.send(("failed", traceback.format_exc(limit=6)))


def browse_loop(conn, page, metrics, refresh_every_s: float, errors: list[str], notes: Counter[str]) -> None:
    seen: dict[str, float] = {}  # panic event_id -> when its card first entered the DOM (epoch s)
    timed: list[list[float]] = []  # [started (epoch ms), re-render ms, of which after the fetch, of which layout]
    marks: dict[str, dict[str, float]] = {}
    waiting: tuple[str, float] | None = None  # (event_id, give up at)
    next_refresh = time.monotonic()
    while True:
        if time.monotonic() >= next_refresh:
            timed.append(page.evaluate(TIMED_REFRESH_JS))
            next_refresh = time.monotonic() + refresh_every_s
        for event_id, at in page.evaluate("window.__bench.take()"):
            seen.setdefault(event_id, at / 1000)
        if waiting is not None and (waiting[0] in seen or time.monotonic() > waiting[1]):
            conn.send(("seen", seen.get(waiting[0])))
            waiting = None
        if not conn.poll(0.02 if waiting else 0.1):
            continue
        command, arg = conn.recv()
        if command == "mark":
            marks[arg] = metrics()
        elif command == "wait_panic":
            event_id, timeout_s = arg
            waiting = (event_id, time.monotonic() + timeout_s)
        elif command == "close":
            return
        elif command == "finish":
            try:  # the box table is refetched on every heartbeat, and every 10 s anyway
                page.wait_for_function(BOXES_SHOWN_JS, arg=arg, timeout=15_000, polling=200)
            except Exception as e:  # what the page shows is reported below
                errors.append(f"box table: {type(e).__name__}")
            for event_id, at in page.evaluate("window.__bench.take()"):
                seen.setdefault(event_id, at / 1000)
            state = page.evaluate(PAGE_STATE_JS)
            conn.send(("finished", {**state, "seen": seen, "timed": timed, "marks": {**marks, "end": metrics()},
                                    "errors": errors, "notes": dict(notes)}))  # fmt: skip
            return


def browser_problems(found: dict, shown: dict, args: argparse.Namespace) -> list[str]:
    problems = []
    if (missed := found["load_panics_never_shown"]) or (
        found["panic_to_dom_ms"]["under_load"]["n"] < args.browser_load_panics
    ):
        problems.append(f"browser: {missed} panics of the load never shown on the page")
    if shown["rows"] != args.boxes or shown["online"] != args.boxes:
        problems.append(f"browser: the page lists {shown['rows']} boxes, {shown['online']} online "
                        f"(expected {args.boxes} online)")  # fmt: skip
    if shown["link"] != "live" or shown["link_downs"]:
        problems.append(f"browser: live updates dropped {shown['link_downs']} times, {shown['link']!r} at the end")
    if not shown["longtask_observed"]:
        problems.append("browser: long tasks could not be observed")
    if shown["errors"]:
        problems.append(f"browser: {len(shown['errors'])} errors on the page, e.g. {shown['errors'][0]}")
    return problems


def process_tree(pid: int) -> dict[int, list[str]]:
    """A process and all its descendants: pid -> its arguments (Chromium rewrites its processes'
    titles: their arguments space separated in one)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, todo = set(), [pid]
    while todo:
        tree.add(todo.pop())
        todo += [child for child, parent in parents.items() if parent in tree and child not in tree]
    found = {}
    for process in tree:
        try:
            args = Path(f"/proc/{process}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
        except OSError:
            continue
        if args:
            found[process] = args
    return found


def nice_chromium(nice: int) -> str:
    """Playwright starts Chromium in a session of its own (so an autogroup of its own, where the
    kernel has them) and Chromium sets its processes' and threads' priorities itself, so a niceness
    inherited from here does not hold: nice Chromium's autogroups instead."""
    groups: dict[str, int] = {}
    for process, args in process_tree(os.getpid()).items():
        try:
            if "chromium" in args[0]:
                groups.setdefault(Path(f"/proc/{process}/autogroup").read_text().split()[0], process)
        except OSError:
            continue
    done = []
    for group, process in groups.items():
        try:
            Path(f"/proc/{process}/autogroup").write_text(str(nice))
            done.append(group)
        except OSError as e:
            return f"could not nice Chromium's {group}: {e}"
    if not done:
        return f"no autogroups here: Chromium started at nice {nice} (it sets some of its processes' itself)"
    return f"Chromium's {', '.join(done)} at nice {nice}, Playwright's driver at nice {nice}"


def browser_cpu(pid: int) -> defaultdict[str, float]:
    """CPU seconds of a process and all its descendants (the browser: this script in a child process,
    Playwright's driver, Chromium's processes), by what each process is."""
    used: defaultdict[str, float] = defaultdict(float)
    for process, args in process_tree(pid).items():
        if "chromium" not in args[0]:
            kind = "driver" if "node" in args[0] else "python"
        elif sub := next((a.split("=")[1].split(".")[0] for a in args if a.startswith("--utility-sub-type=")), None):
            kind = sub  # audio, network, storage
        else:
            kind = next((a.split("=")[1] for a in args if a.startswith("--type=")), "browser")
        if not math.isnan(seconds := cpu_seconds(process)):
            used[kind] += seconds
    return used


def cpu_between(before: defaultdict[str, float], after: defaultdict[str, float]) -> dict[str, float]:
    used = {kind: round(after[kind] - before[kind], 1) for kind in after if after[kind] - before[kind] >= 0.05}
    return {"all": round(sum(used.values()), 1), **dict(sorted(used.items(), key=lambda kv: -kv[1]))}


def in_window(rows: list[list[float]], window: tuple[float, float]) -> list[list[float]]:
    """The rows (first field: started, epoch ms) that started within `window` (epoch s)."""
    return [row for row in rows if window[0] * 1000 <= row[0] <= window[1] * 1000]


def ms_stats(values: Sequence[float | None]) -> dict[str, float]:
    return stats([v / 1000 for v in values if v is not None])


def browser_results(
    page: dict,
    windows: dict[str, tuple[float, float]],
    load_probes: dict[str, float],
    load_panics: dict[str, float],
    idle_probes: list[float],
    cpu_s: dict[str, dict[str, float]],
) -> dict[str, object]:
    """The browser's figures: each phase's window is epoch seconds (start, end)."""
    seen = page["seen"]
    shown = {name: [seen[e] - at for e, at in sent.items() if e in seen] for name, sent in
             (("load", load_probes), ("all_load", load_panics))}  # fmt: skip
    out: dict[str, object] = {
        "panic_to_dom_ms": {
            "under_load": stats(shown["load"]),
            "idle": stats(idle_probes),
            "all_load_panics": stats(shown["all_load"]),
        },
        "load_panics_never_shown": len(load_panics) - len(shown["all_load"]),
        "boxes_on_page": {"rows": page["rows"], "online": page["online"]},
        "feed_cards_at_end": {"cards": page["cards"], "panics": page["panic_cards"]},
        "link_at_end": page["link"],
        "link_drops": page["link_downs"],
        "longtask_observed": page["longtask_observed"],
        "errors": page["errors"][:20],
        "not_errors": page["notes"],
        "audio_contexts": page["audio"],
        "elements_at_end": page["elements"],
    }
    for phase, window in windows.items():
        feed = in_window(page["refresh"]["events"], window)
        boxes = in_window(page["refresh"]["boxes"], window)
        timed = in_window(page["timed"], window)
        tasks = [d for _, d in in_window(page["longtasks"], window)]
        span_s = window[1] - window[0]
        marks = page["marks"]
        first, last = marks.get(f"{phase}_start"), marks.get(f"{phase}_end")
        main_thread = {}
        if first and last:
            wall = last["at"] - first["at"]
            spent = {k: round(last[k] - first[k], 2) for k in CDP_METRICS[:7]}
            main_thread = {
                "in_tasks_share": round(spent["TaskDuration"] / wall, 3),
                "cpu_share": round(spent["ThreadTime"] / wall, 3),
                "renderer_cpu_share": round(spent["ProcessTime"] / wall, 3),
                "seconds": spent,
                "layouts": int(last["LayoutCount"] - first["LayoutCount"]),
                "js_heap_mib": round(last["JSHeapUsedSize"] / 2**20, 1),
                "audio_handlers": int(last["AudioHandlers"]),
            }
        out[phase] = {
            "window_s": round(span_s, 1),
            "feed_refresh_ms": {
                "total": ms_stats([r[1] for r in feed]),
                "fetch": ms_stats([r[2] for r in feed]),
                "render": ms_stats([r[1] - r[2] for r in feed if r[2] is not None]),
            },
            "boxes_refresh_ms": {
                "total": ms_stats([r[1] for r in boxes]),
                "render": ms_stats([r[1] - r[2] for r in boxes if r[2] is not None]),
            },
            "timed_refresh_ms": {
                "total": ms_stats([r[1] for r in timed]),
                "after_fetch": ms_stats([r[2] for r in timed]),
                "layout": ms_stats([r[3] for r in timed]),
            },
            "long_tasks": {
                "count": len(tasks),
                "total_ms": round(sum(tasks)),
                "max_ms": round(max(tasks, default=0)),
                "share": round(sum(tasks) / 1000 / span_s, 3) if span_s > 0 else 0,
                "durations_ms": ms_stats(tasks),
            },
            "main_thread": main_thread,
            "cpu_s": cpu_s[phase],
        }
    return out


# --- the operator's side ----------------------------------------------------------------------


class Page:
    """One open console page: its server-sent events stream, and the refetches each change
    triggers, after the page's own 150 ms debounce (console.js). Every refetch is timed."""

    def __init__(self, console: ConsoleServer) -> None:
        self.changes: Counter[str] = Counter()
        self.timings: dict[str, list[float]] = {"feed": [], "boxes": []}
        self.errors: list[str] = []
        self._stream, self._fetch = console.client(), console.client()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._threads = [threading.Thread(target=t, daemon=True) for t in (self._listen, self._refetch)]
        for thread in self._threads:
            thread.start()

    def _listen(self) -> None:
        try:
            with self._stream.stream("GET", "/api/stream", timeout=httpx.Timeout(10, read=None)) as response:
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    change = json.loads(line[5:])
                    kind = change.get("kind")
                    if kind is None:
                        continue  # hello
                    self.changes[kind] += 1
                    target = {"events": "feed", "boxes": "boxes"}.get(kind)
                    if target:
                        with self._lock:
                            self._pending.add(target)
                        self._wake.set()
        except httpx.HTTPError as e:
            if not self._stop.is_set():
                self.errors.append(f"stream: {e!r}")

    def _refetch(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(0.5):
                continue
            time.sleep(0.15)
            self._wake.clear()
            with self._lock:
                pending, self._pending = self._pending, set()
            for name in sorted(pending):
                _, path, query = ENDPOINTS[name]
                try:
                    seconds, _ = timed_get(self._fetch, path, query)
                    self.timings[name].append(seconds)
                except (httpx.HTTPError, RuntimeError) as e:
                    self.errors.append(f"refetch {name}: {e!r}")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(5)
        self._stream.close()
        self._fetch.close()


def timed_get(client: httpx.Client, path: str, query: dict[str, str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    response = client.get(path, params=query)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} {query}: {response.status_code} {response.text[:200]}")
    return seconds, response.content


class Prober:
    """Times the page's requests, round-robin, one at a time, `gap_s` apart."""

    def __init__(self, client: httpx.Client, identities: list[tuple[str, str]], gap_s: float, seed: int) -> None:
        self.client, self.identities, self.gap_s = client, identities, gap_s
        self.rng = random.Random(seed)
        self.errors: list[str] = []
        self.stamps: dict[str, list[float]] = {name: [] for name in ENDPOINTS}  # when each sample was taken

    def one(self, name: str, timings: dict[str, list[float]], sizes: dict[str, int]) -> None:
        _, path, query = ENDPOINTS[name]
        if name == "box":
            site, box_id = self.rng.choice(self.identities)
            query = {**query, "site": site, "box_id": box_id}
        try:
            seconds, body = timed_get(self.client, path, query)
        except (httpx.HTTPError, RuntimeError) as e:
            self.errors.append(repr(e))
            return
        timings[name].append(seconds)
        self.stamps[name].append(time.monotonic())
        sizes[name] = max(sizes.get(name, 0), len(body))
        time.sleep(self.gap_s)

    def run(self, samples: int, spread_s: float = 0, until=None) -> tuple[dict[str, list[float]], dict[str, int]]:
        """`samples` of each endpoint, spread evenly over `spread_s` (back to back, `gap_s` apart, when
        the requests take longer), or fewer if `until()` turns true first; then waits for `until()`."""
        timings: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
        sizes: dict[str, int] = {}
        self.stamps = {name: [] for name in ENDPOINTS}
        slot = spread_s / (samples * len(ENDPOINTS))
        started = time.monotonic()
        for k in range(samples * len(ENDPOINTS)):
            if until is not None and until():
                return timings, sizes
            if (wait := started + k * slot - time.monotonic()) > 0:
                time.sleep(wait)
            self.one(list(ENDPOINTS)[k % len(ENDPOINTS)], timings, sizes)
        while until is not None and not until():
            time.sleep(0.05)
        return timings, sizes


def stats(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ms = np.array(seconds) * 1000
    return {"n": len(ms), "p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1),
            "max": round(float(ms.max()), 1)}  # fmt: skip


def pid_of(process: multiprocessing.process.BaseProcess | subprocess.Popen[bytes] | None) -> int:
    """The pid of a process this benchmark started (None before it was started)."""
    pid = None if process is None else process.pid
    if pid is None:
        raise RuntimeError("a benchmark process was never started")
    return pid


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def expect(conn, what: str, timeout_s: float, process=None):
    """The boxes' (or the browser's) process's next answer, which must be `what`."""
    deadline = time.monotonic() + timeout_s
    while not conn.poll(0.2):
        if process is not None and not process.is_alive():
            raise RuntimeError(f"the boxes' process exited ({process.exitcode}) before sending {what!r}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the boxes' process sent no {what!r} in {timeout_s} s")
    name, value = conn.recv()
    if name == "failed":
        raise RuntimeError(f"the child process failed before sending {what!r}:\n{value}")
    if name != what:
        raise RuntimeError(f"expected {what!r} from the boxes' process, got {name!r}")
    return value


def stored_events(db: Path) -> tuple[int, int, dict[str, tuple[str, float]]]:
    """Rows, distinct event ids, and event_id -> (kind, received_at), read-only."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as reader:
        rows, distinct = reader.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events").fetchone()
        found = {e: (k, r) for e, k, r in reader.execute("SELECT event_id, kind, received_at FROM events")}
    reader.close()
    return rows, distinct, found


def wait_boxes_online(client: httpx.Client, count: int, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        boxes = client.get("/api/boxes").json()["boxes"]
        status = Counter(box["status"] for box in boxes)
        if status["online"] >= count or time.monotonic() > deadline:
            return {"listed": len(boxes), **status}
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--sites", type=int, default=20, help="the boxes are spread over this many sites")
    parser.add_argument("--events", type=int, default=10000, help="distinct events to send")
    parser.add_argument("--rate", type=float, default=250, help="sends per second, all boxes together")
    parser.add_argument("--heartbeat-s", type=float, default=2, help="each box heartbeats this often")
    parser.add_argument("--resend-share", type=float, default=0.05, help="share of sends that are exact resends")
    parser.add_argument("--panic-share", type=float, default=0.02, help="share of new events that are panics")
    parser.add_argument("--samples", type=int, default=200, help="timed requests per endpoint and phase")
    parser.add_argument("--probe-gap-ms", type=float, default=10, help="pause between timed requests")
    parser.add_argument("--visible", type=int, default=50, help="alerts timed from publish to the box's feed")
    parser.add_argument("--receipt-timeout-s", type=float, default=180)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broker-option", action="append", default=[], help="an extra mosquitto.conf line")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--feed-target-ms", type=float, default=FEED_TARGET_MS, help="the feed's p95 target")
    parser.add_argument("--strict", action="store_true", help="exit 1 also when the feed misses its target")
    parser.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    parser.add_argument("--browser-load-panics", type=int, default=30, help="panics timed to the page under load")
    parser.add_argument("--browser-idle-panics", type=int, default=20, help="panics timed to the page when idle")
    parser.add_argument("--browser-refresh-s", type=float, default=2, help="how often to time a feed re-render")
    parser.add_argument("--browser-nice", type=int, default=10, help="the browser's niceness (it yields the CPUs)")
    args = parser.parse_args()
    per_site = math.ceil(args.boxes / args.sites)
    identities = [identity(i, per_site) for i in range(args.boxes)]
    bench_started = time.monotonic()
    problems: list[str] = []
    results: dict[str, object] = {
        "boxes": args.boxes, "sites": math.ceil(args.boxes / per_site), "heartbeat_s": args.heartbeat_s,
        "events": args.events, "rate": args.rate, "cpus": os.cpu_count(), "broker_options": args.broker_option,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gatebox-console-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto")
        with broker.conf.open("a") as conf:
            conf.writelines(f"{line}\n" for line in args.broker_option)
        context = multiprocessing.get_context("spawn")
        conn, child_conn = context.Pipe()
        console = client = page = boxes = browser = None
        bconn, browser_conn = context.Pipe()
        log_text = ""
        try:
            broker.start()
            generate_keypair(work / "centre.pem", work / "centre.pub.pem")
            console = ConsoleServer(work, broker.port, work / "centre.pem")
            client = console.client()
            if args.browser:  # logs in while the boxes connect
                browse_args = (browser_conn, console.url, args.browser_refresh_s, args.browser_nice)
                browser = context.Process(target=browse, args=browse_args, daemon=True)
                browser.start()
            fleet_args = (child_conn, broker.port, str(work / "centre.pub.pem"), args.boxes, per_site, args.heartbeat_s)
            boxes = context.Process(target=fleet, args=fleet_args, daemon=True)
            boxes.start()
            expect(conn, "ready", 180, boxes)
            online = wait_boxes_online(client, args.boxes, 60)
            if online.get("online", 0) < args.boxes:
                problems.append(f"only {online} boxes online before the load")
            if browser is not None:
                browser_ready = expect(bconn, "ready", 120, browser)
            page = Page(console)
            prober = Prober(client, identities, args.probe_gap_ms / 1000, args.seed)

            # Load: the boxes send while the page is open and its requests are timed.
            pids = {"console": console.process.pid, "mosquitto": pid_of(broker.process), "boxes": pid_of(boxes),
                    "operator": os.getpid()}  # fmt: skip
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            if browser is not None:
                browser_used = {"under_load_start": browser_cpu(pid_of(browser))}
                bconn.send(("mark", "under_load_start"))
            conn.send(("load", {"events": args.events, "rate": args.rate, "resend_share": args.resend_share,
                                "panic_share": args.panic_share, "seed": args.seed,
                                "probes": args.browser_load_panics if browser else 0}))  # fmt: skip
            expected_s = args.events / (1 - args.resend_share) / args.rate
            load_started = time.monotonic()
            under_load, sizes = prober.run(args.samples, spread_s=0.95 * expected_s, until=conn.poll)
            late = load_started + 0.75 * (
                time.monotonic() - load_started
            )  # the last quarter: 3/4+ of the events stored
            late_feed = [t for t, at in zip(under_load["feed"], prober.stamps["feed"], strict=True) if at >= late]
            sent = expect(conn, "loaded", 10, boxes)
            cpu_load = {name: round(cpu_seconds(pid) - cpu_before[name], 1) for name, pid in pids.items()}
            if browser is not None:
                bconn.send(("mark", "under_load_end"))
                browser_used["under_load_end"] = used = browser_cpu(pid_of(browser))
                cpu_load["browser"] = cpu_between(browser_used["under_load_start"], used)["all"]
            conn.send(("receipts", args.receipt_timeout_s))
            receipts = expect(conn, "receipts", args.receipt_timeout_s + 30, boxes)
            if receipts["missing"]:
                problems.append(f"{receipts['missing']} events never confirmed to their box")

            # Stored exactly once?
            rows, distinct, found = stored_events(console.db)
            records = sent["records"]
            ids = {r[0] for r in records}
            missing = [r for r in records if r[0] not in found]
            unexpected = set(found) - ids
            wrong_kind = [r for r in records if r[0] in found and (found[r[0]][0] == "panic") != (r[2] == "panic")]
            if missing:
                problems.append(f"{len(missing)} of {len(ids)} events not stored (e.g. {missing[0][0]})")
            if rows != distinct or rows != len(found):
                problems.append(f"{rows} rows for {distinct} distinct event ids")
            if unexpected:
                problems.append(f"{len(unexpected)} stored events that were never sent")
            if wrong_kind:
                problems.append(f"{len(wrong_kind)} events stored with the wrong kind")
            if len(ids) != len(records):
                problems.append(f"the load sent {len(records) - len(ids)} colliding event ids")
            lags = [found[e][1] - at for e, _, _, at in records if e in found]
            last_stored = max((found[e][1] for e in ids if e in found), default=sent["ended"])
            ingest = {
                "events_per_s": round(len(ids) / (last_stored - sent["started"]), 1),
                "send_s": round(sent["send_s"], 1),
                "sends": sent["sends"],
                "sends_per_s": round(sent["sends"] / sent["send_s"], 1),
                "resends": sent["resends"],
                "panics": sent["panics"],
                "publish_to_stored_ms": stats(lags),
                "last_stored_after_last_send_s": round(last_stored - sent["ended"], 2),
                "all_receipts_after_last_send_s": round(receipts["at"] - sent["ended"], 2),
            }

            # Idle at 10,000 stored events: no alerts, the boxes still heartbeat, the page still open.
            idle_started = time.time()
            if browser is not None:
                bconn.send(("mark", "idle_start"))
                browser_used["idle_start"] = browser_cpu(pid_of(browser))
            idle, idle_sizes = prober.run(args.samples)

            # Publish -> visible in the box's feed, one alert at a time.
            rng = random.Random(args.seed + 1)
            visible = []
            for i in range(args.visible):
                index = rng.randrange(args.boxes)
                site, box_id = identities[index]
                event_id = uuid.uuid4().hex
                conn.send(("alert", (index, event_id, i)))
                published = expect(conn, "published", 10, boxes)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    events = client.get("/api/events", params={**PAGE, "site": site, "box_id": box_id}).json()
                    if any(e["event_id"] == event_id for e in events["events"]):
                        visible.append(time.time() - published)
                        break
                else:
                    problems.append(f"alert {event_id} not in its box's feed 30 s after it was published")
                time.sleep(0.05)

            # Publish -> the panic's card in the browser's DOM, one panic at a time (--browser).
            idle_panics: list[float] = []
            for _ in range(args.browser_idle_panics if browser else 0):
                event_id = uuid.uuid4().hex
                conn.send(("panic", (rng.randrange(args.boxes), event_id)))
                published = expect(conn, "published", 10, boxes)
                bconn.send(("wait_panic", (event_id, 30)))
                if (shown_at := expect(bconn, "seen", 60, browser)) is None:
                    problems.append(f"panic {event_id} not on the browser's page 30 s after it was published")
                else:
                    idle_panics.append(shown_at - published)
                time.sleep(rng.uniform(0.1, 0.4))  # not in step with the page's timers
            idle_ended = time.time()
            if browser is not None:
                bconn.send(("mark", "idle_end"))
                browser_used["idle_end"] = browser_cpu(pid_of(browser))

            online = wait_boxes_online(client, args.boxes, 10)
            if online.get("online", 0) != args.boxes or online["listed"] != args.boxes:
                problems.append(f"boxes at the end: {online} (expected {args.boxes} online)")
            conn.send(("receipts", 30))
            if (confirmed := expect(conn, "receipts", 60, boxes))["missing"]:
                problems.append(f"{confirmed['missing']} timed alerts never confirmed")
            rows_end, distinct_end, _ = stored_events(console.db)
            files = {"db_mib": console.db, "wal_mib": Path(f"{console.db}-wal")}
            sizes_mib = {k: round(f.stat().st_size / 2**20, 1) if f.exists() else 0 for k, f in files.items()}
            if rows_end != distinct_end or rows_end != len(ids) + args.visible + len(idle_panics):
                problems.append(f"at the end: {rows_end} rows, {distinct_end} distinct, expected "
                                f"{len(ids) + args.visible + len(idle_panics)}")  # fmt: skip
            errors = prober.errors + page.errors
            if errors:
                problems.append(f"{len(errors)} failed requests, e.g. {errors[0]}")
            if browser is not None:
                bconn.send(("finish", args.boxes))
                shown = expect(bconn, "finished", 60, browser)
                load_panics = {e: at for e, _, kind, at in records if kind == "panic"}
                windows = {"under_load": (sent["started"], sent["ended"]), "idle": (idle_started, idle_ended)}
                probes = {e: load_panics[e] for e in sent["probes"]}
                cpu = {
                    phase: cpu_between(browser_used[f"{phase}_start"], browser_used[f"{phase}_end"])
                    for phase in windows
                }
                browser_found: dict[str, object] = {
                    **browser_ready,
                    **browser_results(shown, windows, probes, load_panics, idle_panics, cpu),
                }
                results["browser"] = browser_found
                problems += browser_problems(browser_found, shown, args)
        except BaseException:
            failed = True
            raise
        else:
            failed = False
        finally:
            if browser is not None:
                if browser.is_alive():
                    bconn.send(("close", None))
                browser.join(30)
                if browser.is_alive():
                    browser.terminate()
                    browser.join(10)
            if page is not None:
                page.close()
            if client is not None:
                client.close()
            if boxes is not None and boxes.is_alive():
                conn.send(("close", None))
                if conn.poll(30):
                    conn.recv()
                boxes.join(10)
                if boxes.is_alive():
                    boxes.kill()
            if console is not None:
                console.stop()
                log_text = console.log.read_text()
            broker.stop()
            if failed and log_text:
                print("console log (last lines):\n  " + "\n  ".join(log_text.splitlines()[-20:]), file=sys.stderr)
    log_lines = log_text.splitlines()
    console_log = {
        "lines": len(log_lines), "warnings": sum(" WARNING " in line or '"WARNING"' in line for line in log_lines),
        "errors": sum(" ERROR " in line or '"ERROR"' in line for line in log_lines), "tracebacks":
        log_text.count("Traceback"),
    }  # fmt: skip
    if console_log["errors"] or console_log["tracebacks"]:
        problems.append(f"the console logged errors: {console_log}")

    feed_p95 = stats(under_load["feed"]).get("p95", math.inf)
    feed_ok = max(feed_p95, stats(idle["feed"]).get("p95", math.inf)) < args.feed_target_ms
    if args.strict and not feed_ok:
        problems.append(f"feed p95 not under {args.feed_target_ms} ms")
    results.update({
        "ingest": ingest,
        "stored": {"rows": rows, "distinct": distinct, "sent_distinct": len(ids), "missing": len(missing),
                   "unexpected": len(unexpected), "receipts_missing": receipts["missing"]},
        "latency_ms": {
            "under_load": {name: stats(t) for name, t in under_load.items()},
            "feed_last_quarter_of_load": stats(late_feed),
            "idle": {name: stats(t) for name, t in idle.items()},
            "page_refetch": {name: stats(t) for name, t in page.timings.items()},
            "publish_to_feed": stats(visible),
        },
        "response_bytes": {name: max(sizes.get(name, 0), idle_sizes.get(name, 0)) for name in ENDPOINTS},
        "page_changes": dict(page.changes),
        "boxes_online": online.get("online", 0),
        "cpu_s_during_load": cpu_load,
        "store": sizes_mib,
        "console_log": console_log,
        "feed_target_ms": args.feed_target_ms,
        "feed_target_met": feed_ok,
        "problems": problems,
        "ok": not problems,
        "run_s": round(time.monotonic() - bench_started, 1),
    })  # fmt: skip
    summary(results, log_lines if problems else [])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("RESULTS " + json.dumps(results, separators=(",", ":")))
    return 0 if not problems else 1


def browser_summary(browser: dict, row, idle_label: str) -> None:
    load, idle, dom = browser["under_load"], browser["idle"], browser["panic_to_dom_ms"]
    print(f"\n{'browser: headless Chromium on the page (ms)':<50}{'under load':^29}   {idle_label:^29}")
    row("panic published -> its card in the page's DOM", dom["under_load"], dom["idle"])
    row("  every panic of the load", dom["all_load_panics"], None)
    row("page's own feed refresh (SSE-driven): fetch+render", load["feed_refresh_ms"]["total"],
        idle["feed_refresh_ms"]["total"])  # fmt: skip
    row("  of which render, after the fetch", load["feed_refresh_ms"]["render"], idle["feed_refresh_ms"]["render"])
    row("page's own box table refresh: fetch+render", load["boxes_refresh_ms"]["total"],
        idle["boxes_refresh_ms"]["total"])  # fmt: skip
    row("  of which render, after the fetch", load["boxes_refresh_ms"]["render"], idle["boxes_refresh_ms"]["render"])
    row("refreshEvents() + forced layout, timed", load["timed_refresh_ms"]["total"], idle["timed_refresh_ms"]["total"])
    row("  of which render + layout, after the fetch", load["timed_refresh_ms"]["after_fetch"],
        idle["timed_refresh_ms"]["after_fetch"])  # fmt: skip
    row("long tasks (> 50 ms) on the page's main thread", load["long_tasks"]["durations_ms"],
        idle["long_tasks"]["durations_ms"])  # fmt: skip
    for name, phase in (("under load", load), ("idle", idle)):
        tasks, thread = phase["long_tasks"], phase["main_thread"]
        spent = thread.get("seconds", {})
        busy = (
            f"; main thread in tasks {thread['in_tasks_share']:.0%} of the time, on a CPU {thread['cpu_share']:.0%} "
            f"(script {spent['ScriptDuration']} s, layout {spent['LayoutDuration']} s, style "
            f"{spent['RecalcStyleDuration']} s, {thread['layouts']} layouts; DevTools calls "
            f"{spent['DevToolsCommandDuration']} s), renderer CPU {thread['renderer_cpu_share']:.0%}; "
            f"JS heap {thread['js_heap_mib']} MiB, {thread['audio_handlers']} audio handlers"
            if thread
            else ""
        )
        print(
            f"page {name} ({phase['window_s']} s): {tasks['count']} long tasks, {tasks['total_ms']} ms "
            f"({tasks['share']:.1%}), longest {tasks['max_ms']} ms{busy}"
        )
    shown, cards = browser["boxes_on_page"], browser["feed_cards_at_end"]
    print(
        f"page at the end: {shown['rows']} box rows, {shown['online']} online; feed {cards['cards']} cards "
        f"({cards['panics']} panics); link {browser['link_at_end']!r}, dropped {browser['link_drops']} times; "
        f"{len(browser['errors'])} page errors; panics of the load never shown: {browser['load_panics_never_shown']}"
    )
    audio, chrome = browser["audio_contexts"], next((a for a in browser["agent"].split() if "Chrome/" in a), "?")
    print(f"browser {chrome}; {browser['nice']}; CPU s under load {load['cpu_s']}, idle {idle['cpu_s']}")
    print(
        f"the page's alarm() opened {audio['created']} AudioContexts and closed {audio['closed']}; "
        f"{browser['elements_at_end']} elements in the page at the end"
    )
    if browser["not_errors"]:
        print(f"on the page, not counted as errors: {browser['not_errors']}")


def summary(results: dict, log_lines: list[str]) -> None:
    ingest, latency, stored = results["ingest"], results["latency_ms"], results["stored"]

    def cell(s: dict[str, float] | None) -> str:
        if not s:
            return " " * 29
        if not s["n"]:
            return f"{0:>5}{'-':>24}"
        return f"{s['n']:>5}{s['p50']:>8.1f}{s['p95']:>8.1f}{s['max']:>8.1f}"

    def row(label: str, under: dict[str, float] | None, idle: dict[str, float] | None, tail: str = "") -> None:
        print(f"{label:<50}{cell(under)}   {cell(idle)}{tail}")

    print(
        f"console load: {results['boxes']} boxes on {results['sites']} sites, heartbeat every "
        f"{results['heartbeat_s']} s;"
        f" {stored['sent_distinct']} distinct events ({ingest['panics']} panics) + {ingest['resends']} exact resends"
        f" in {ingest['send_s']} s ({ingest['sends_per_s']} sends/s, asked {results['rate']})"
    )
    lag = ingest["publish_to_stored_ms"]
    print(
        f"ingest: {ingest['events_per_s']} events/s stored end to end; publish -> stored p50 {lag['p50']} ms, "
        f"p95 {lag['p95']} ms, max {lag['max']} ms; last event stored {ingest['last_stored_after_last_send_s']} s and "
        f"every receipt in {ingest['all_receipts_after_last_send_s']} s after the last send"
    )
    print(
        f"stored: {stored['rows']} rows, {stored['distinct']} distinct event ids for {stored['sent_distinct']} sent: "
        f"{stored['missing']} missing, {stored['unexpected']} unexpected, {stored['receipts_missing']} unconfirmed; "
        f"boxes online at the end {results['boxes_online']}/{results['boxes']}; store {results['store']}"
    )
    idle_label = f"idle, {results['events']:,} events stored"
    print(f"\n{'request (ms)':<50}{'under load':^29}   {idle_label:^29}")
    columns = f"{'n':>5}{'p50':>8}{'p95':>8}{'max':>8}"
    print(f"{'':<50}{columns}   {columns}{'body':>10}")
    for name, (label, _, _) in ENDPOINTS.items():
        body = results["response_bytes"][name] / 1024
        row(label, latency["under_load"][name], latency["idle"][name], f"{body:>6.0f} KiB")
    row("  the same, last quarter of the load", latency["feed_last_quarter_of_load"], None)
    for name, s in latency["page_refetch"].items():
        row(f"open page's SSE-driven {ENDPOINTS[name][0].split('?')[0]}, whole run", s, None)
    row("publish one alert -> in its box's feed", None, latency["publish_to_feed"])
    if browser := results.get("browser"):
        browser_summary(browser, row, idle_label)
    print(
        f"\npage's change notices: {results['page_changes']}; CPU s during the load: {results['cpu_s_during_load']}"
        f" ({results['cpus']} CPUs); console log: {results['console_log']}"
    )
    verdict = "met" if results["feed_target_met"] else "MISSED"
    print(f"feed p95 < {results['feed_target_ms']} ms (under load and idle): {verdict}; run {results['run_s']} s")
    for problem in results["problems"]:
        print(f"PROBLEM: {problem}")
    if log_lines:
        print("console log (last lines):\n  " + "\n  ".join(log_lines[-20:]))


if __name__ == "__main__":
    sys.exit(main())
