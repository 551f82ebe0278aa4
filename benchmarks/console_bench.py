"""Centre console under load (issue 9): 200 simulated boxes on a loopback mosquitto heartbeat and
send alerts and panics (about 5% of sends exact resends, as a box resends what it has no receipt
for) to `gatebox centre serve` until 10,000 distinct events are stored, while an operator's page
is open (its server-sent events stream and the refetches it triggers) and the page's requests are
timed: under load, then idle at 10,000 stored events (the boxes still heartbeating). Then checks
that every event was confirmed to its box and stored exactly once, that every box shows online,
and times publish -> visible in the page's feed for single alerts.

    .venv/bin/python benchmarks/console_bench.py [--boxes 200] [--events 10000] [--rate 250] [--json PATH]

The boxes run in a child process of their own, so the timings taken here (the operator's side)
do not queue behind the boxes' threads. Exits 1 if an event is missing, duplicated or unconfirmed,
a box is not online, a request failed, or the console logged an error; with --strict also when the
feed's p95 misses the 200 ms target. Writes nothing into the repository (--json PATH aside).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from edge.security.signing import generate_keypair, load_public_key  # noqa: E402
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


def fleet(conn, port: int, public_key: str, boxes: int, per_site: int, heartbeat_s: float) -> None:  # type: ignore[no-untyped-def]
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
         panic_share: float, seed: int) -> dict[str, object]:  # fmt: skip
    """Send until `events` distinct events are out, at `rate` sends/s over random boxes."""
    rng = random.Random(seed)
    recent: deque[tuple[int, str, str]] = deque(maxlen=1000)  # (box, leaf, payload): what a box may resend
    records: list[tuple[str, int, str, float]] = []  # (event_id, box, kind, first sent at)
    resends = panics = 0
    started, t0 = time.time(), time.monotonic()
    n = 0
    while len(records) < events:
        if (wait := t0 + n / rate - time.monotonic()) > 0:
            time.sleep(wait)
        n += 1
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
    return {"records": records, "sends": n, "resends": resends, "panics": panics, "started": started,
            "ended": time.time(), "send_s": time.monotonic() - t0}  # fmt: skip


def wait_receipts(sims: list[SimBox], expected: list[set[str]], timeout_s: float) -> dict[str, object]:
    """Until every box holds a receipt for everything it sent (a box forgets an event only then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = sum(len(want - box.receipts) for box, want in zip(sims, expected, strict=True))
        if not missing or time.monotonic() > deadline:
            return {"missing": missing, "at": time.time()}
        time.sleep(0.05)


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

    def run(self, samples: int, spread_s: float = 0, until=None) -> tuple[dict[str, list[float]], dict[str, int]]:  # type: ignore[no-untyped-def]
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


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def expect(conn, what: str, timeout_s: float, process=None):  # type: ignore[no-untyped-def]
    """The boxes' process's next answer, which must be `what`."""
    deadline = time.monotonic() + timeout_s
    while not conn.poll(0.2):
        if process is not None and not process.is_alive():
            raise RuntimeError(f"the boxes' process exited ({process.exitcode}) before sending {what!r}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the boxes' process sent no {what!r} in {timeout_s} s")
    name, value = conn.recv()
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
        console = client = page = boxes = None
        log_text = ""
        try:
            broker.start()
            generate_keypair(work / "centre.pem", work / "centre.pub.pem")
            console = ConsoleServer(work, broker.port, work / "centre.pem")
            client = console.client()
            fleet_args = (child_conn, broker.port, str(work / "centre.pub.pem"), args.boxes, per_site, args.heartbeat_s)
            boxes = context.Process(target=fleet, args=fleet_args, daemon=True)
            boxes.start()
            expect(conn, "ready", 180, boxes)
            online = wait_boxes_online(client, args.boxes, 60)
            if online.get("online", 0) < args.boxes:
                problems.append(f"only {online} boxes online before the load")
            page = Page(console)
            prober = Prober(client, identities, args.probe_gap_ms / 1000, args.seed)

            # Load: the boxes send while the page is open and its requests are timed.
            pids = {"console": console.process.pid, "mosquitto": broker.process.pid, "boxes": boxes.pid,
                    "operator": os.getpid()}  # fmt: skip
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            conn.send(("load", {"events": args.events, "rate": args.rate, "resend_share": args.resend_share,
                                "panic_share": args.panic_share, "seed": args.seed}))  # fmt: skip
            expected_s = args.events / (1 - args.resend_share) / args.rate
            load_started = time.monotonic()
            under_load, sizes = prober.run(args.samples, spread_s=0.95 * expected_s, until=conn.poll)
            late = load_started + 0.75 * (
                time.monotonic() - load_started
            )  # the last quarter: 3/4+ of the events stored
            late_feed = [t for t, at in zip(under_load["feed"], prober.stamps["feed"], strict=True) if at >= late]
            sent = expect(conn, "loaded", 10, boxes)
            cpu_load = {name: round(cpu_seconds(pid) - cpu_before[name], 1) for name, pid in pids.items()}
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

            online = wait_boxes_online(client, args.boxes, 10)
            if online.get("online", 0) != args.boxes or online["listed"] != args.boxes:
                problems.append(f"boxes at the end: {online} (expected {args.boxes} online)")
            conn.send(("receipts", 30))
            if (confirmed := expect(conn, "receipts", 60, boxes))["missing"]:
                problems.append(f"{confirmed['missing']} timed alerts never confirmed")
            rows_end, distinct_end, _ = stored_events(console.db)
            files = {"db_mib": console.db, "wal_mib": Path(f"{console.db}-wal")}
            sizes_mib = {k: round(f.stat().st_size / 2**20, 1) if f.exists() else 0 for k, f in files.items()}
            if rows_end != distinct_end or rows_end != len(ids) + args.visible:
                problems.append(
                    f"at the end: {rows_end} rows, {distinct_end} distinct, expected {len(ids) + args.visible}"
                )
            errors = prober.errors + page.errors
            if errors:
                problems.append(f"{len(errors)} failed requests, e.g. {errors[0]}")
        except BaseException:
            failed = True
            raise
        else:
            failed = False
        finally:
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


def summary(results: dict, log_lines: list[str]) -> None:  # type: ignore[type-arg]
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
