"""The centre at city scale (issue 19, part 3), on loopback: two district brokers bridged over TLS to
the centre's broker (the shipped config/mosquitto templates: district.conf, centre-bridges.conf,
acl-district), `gatebox centre serve` workers behind the centre's broker, a store (SQLite, or
PostgreSQL by URL), and simulated boxes in child processes split over the districts. The boxes
heartbeat and send alerts and panics and, like a real box's outbox, send each again every
--resend-after-s until its receipt comes back from the centre. Mid-run one district's link to the
centre is cut for --cut-s (a TCP relay between its bridge and the centre's listener drops every
connection and refuses new ones), and one console worker is SIGKILLed (--kill-worker) and started
again --restart-s later, as systemd would.

    .venv/bin/python benchmarks/city_bench.py [--boxes 1000] [--events 30000] [--rate 250] [--workers 2]
        [--db postgresql://...] [--cut-s 60] [--kill-worker] [--json docs/bench/city.json]

Measured: every event stored exactly once (rows per event id in the store) and confirmed to its box;
the ingest rate (end to end, and the best 5 s while the backlog of the cut drains); the feed: an
alert raised by a box of the district that is not cut -> visible on an operator's page (its SSE
stream says the events changed, the box's feed is fetched and holds it), p50/p95 under load and
idle; and CPU per process, sampled every second, for what saturates first. Several workers share
the boxes' topics through an MQTT shared subscription (`console.share_group`): the harness sets it
when the centre's config has the field, and refuses --workers > 1 when it has not. Exits 1 if an
event is missing, duplicated or unconfirmed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import math
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.console_bench import LISTS, cpu_seconds, expect, heartbeat, stats  # noqa: E402
from edge.protocol.signing import generate_keypair, load_public_key  # noqa: E402
from tests.conftest import start_cli, write_config  # noqa: E402
from tests.support.bridge import CentreBroker, DistrictBroker, certificates  # noqa: E402
from tests.support.broker import free_port  # noqa: E402
from tests.support.console import CSRF_HEADER, OPERATOR, PASSWORD  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402
from tests.support.simbox import SimBox  # noqa: E402
from tests.support.waiting import wait_listening  # noqa: E402

DISTRICTS = ("district-a", "district-b")  # the first one's link is cut
CENTRE_PASSWORD = "centre-bench-password"
SHARE_GROUP = "city"
# The single-process figures this is compared with: docs/benchmarks.md, "Centre console"
# (console_bench.py: 200 boxes, one mosquitto, one console on SQLite, this 2-core machine).
SINGLE_PROCESS_SQLITE = {
    "source": "docs/benchmarks.md, Centre console (benchmarks/console_bench.py)",
    "boxes": 200,
    "ingest_events_per_s": {"offered_250": 237, "offered_1000": 952},
    "feed_get_p95_ms": {"under_load_10k": 10.1, "under_load_30k": 18.3},
    "publish_to_feed_p95_ms": {"idle_10k": 11.4, "idle_30k": 9.9},
}


# --- a district's link to the centre, which can be cut (a child process) --------------------------


def relay(conn, listen_port: int, target_port: int, cut_mode: str = "reset") -> None:
    """A TCP relay between a district's bridge and the centre's bridge listener (TLS passes through):
    `cut` drops every connection and refuses new ones until `restore`. `cut_mode`: `reset` drops them
    with a TCP reset (what a lost link gives whoever writes next); `close` with a plain close (FIN, no
    TLS close_notify: what a middlebox or a killed peer gives)."""
    asyncio.run(_relay(conn, listen_port, target_port, cut_mode))


def drop(end: asyncio.StreamWriter, cut_mode: str) -> None:
    """Close one end of a relayed connection, by `cut_mode` (see relay())."""
    sock = end.get_extra_info("socket")
    if cut_mode == "reset" and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    end.transport.abort()


async def _relay(conn, listen_port: int, target_port: int, cut_mode: str) -> None:
    state: dict[str, object] = {"cut": False, "connections": 0, "restored_at": None, "reconnected_at": None}
    open_ends: set[asyncio.StreamWriter] = set()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if state["cut"]:
            drop(writer, cut_mode)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.transport.abort()
            return
        state["connections"] = int(state["connections"]) + 1  # type: ignore[call-overload]
        if state["restored_at"] is not None and state["reconnected_at"] is None:
            state["reconnected_at"] = time.time()
        open_ends.update((writer, up_writer))
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        open_ends.difference_update((writer, up_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    loop = asyncio.get_running_loop()
    conn.send(("ready", None))
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "cut":
            state["cut"] = True
            for end in list(open_ends):
                drop(end, cut_mode)
            conn.send(("cut", time.time()))
        elif command == "restore":
            state.update(cut=False, restored_at=time.time(), reconnected_at=None)
            conn.send(("restored", state["restored_at"]))
        elif command == "stats":
            conn.send(("stats", dict(state)))
        else:
            break
    server.close()
    conn.send(("closed", None))


# --- the boxes (child processes) -------------------------------------------------------------------


class SimOutbox:
    """What a box keeps until the centre's receipt: each event is sent again until its receipt arrives,
    the wait doubling with each send from `resend_after_s` up to `resend_max_s` (the box's outbox,
    link.resend_after_s and link.resend_max_s)."""

    def __init__(self, sims: list[SimBox], resend_after_s: float, resend_max_s: float) -> None:
        self.sims, self.resend_after_s, self.resend_max_s = sims, resend_after_s, max(resend_max_s, resend_after_s)
        # receipt id -> (box, leaf, payload, last sent, sends so far)
        self.pending: dict[str, tuple[int, str, str, float, int]] = {}
        self.resends = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, index: int, leaf: str, payload: str, receipt_id: str, sent: float) -> None:
        with self._lock:
            self.pending[receipt_id] = (index, leaf, payload, sent, 1)

    def missing(self) -> int:
        with self._lock:
            return sum(rid not in self.sims[i].receipts for rid, (i, *_) in self.pending.items())

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            now = time.time()
            with self._lock:
                for rid, (index, leaf, payload, last, sends) in list(self.pending.items()):
                    if rid in self.sims[index].receipts:
                        del self.pending[rid]
                    elif now - last >= min(self.resend_after_s * 2 ** min(sends - 1, 20), self.resend_max_s):
                        self.sims[index].publish(leaf, payload)
                        self.pending[rid] = (index, leaf, payload, now, sends + 1)
                        self.resends += 1

    def wait(self, timeout_s: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        while (missing := self.missing()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return {"missing": missing, "at": time.time(), "resends": self.resends}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def fleet(
    conn, boxes: list[tuple[str, str, int]], public_key: str, heartbeat_s: float, resend_after_s: float,
    resend_max_s: float,
) -> None:  # fmt: skip
    """Connects `boxes` (site, box_id, its district broker's port), heartbeats until closed and
    answers the parent's commands over `conn`."""
    key = load_public_key(Path(public_key))
    sims = [SimBox(port, site, box_id, key, keepalive=30) for site, box_id, port in boxes]
    outbox = SimOutbox(sims, resend_after_s, resend_max_s)
    stop = threading.Event()
    beats = threading.Thread(target=heartbeat, args=(sims, heartbeat_s, stop), daemon=True)
    beats.start()
    conn.send(("ready", None))
    while True:
        command, arg = conn.recv()
        if command == "load":
            conn.send(("loaded", load(sims, outbox, **arg)))
        elif command == "alert":  # one alert, timed to the operator's page
            index, event_id = arg
            published = time.time()
            alert = sims[index].alert(subject="s-probe", event_id=event_id)
            outbox.add(index, "alert", alert.to_json(), event_id, published)
            conn.send(("published", published))
        elif command == "receipts":
            conn.send(("receipts", outbox.wait(arg)))
        elif command == "close":
            break
    stop.set()
    beats.join(5)
    outbox.close()
    for box in sims:
        try:
            box.close()
        except RuntimeError:  # its broker dropped it: no goodbye to send
            box.close(goodbye=False)
    conn.send(("closed", None))


def load(sims: list[SimBox], outbox: SimOutbox, events: int, rate: float, panic_share: float,
         seed: int) -> dict[str, object]:  # fmt: skip
    """Send `events` new events at `rate`/s over random boxes (each kept until its receipt)."""
    rng = random.Random(seed)
    records: list[tuple[str, str, str, float]] = []  # (event_id, site, kind, first sent at)
    started, t0 = time.time(), time.monotonic()
    for n in range(events):
        if (wait := t0 + n / rate - time.monotonic()) > 0:
            time.sleep(wait)
        index, event_id = rng.randrange(len(sims)), uuid.uuid4().hex
        box, sent = sims[index], time.time()
        if rng.random() < panic_share:
            panic = box.panic(device=f"btn-{rng.randrange(4)}", event_id=event_id)
            outbox.add(index, "panic", panic.to_json(), panic.message_id, sent)
            records.append((event_id, box.site, "panic", sent))
        else:
            alert = box.alert(subject=f"s{rng.randrange(97)}", list_name=rng.choice(LISTS), event_id=event_id,
                              seed=rng.randrange(64))  # fmt: skip
            outbox.add(index, "alert", alert.to_json(), event_id, sent)
            records.append((event_id, box.site, "alert", sent))
    return {"records": records, "started": started, "ended": time.time(), "send_s": time.monotonic() - t0}


# --- the centre's side -----------------------------------------------------------------------------


class Worker:
    """One `gatebox centre serve` process: its own HTTP port and MQTT client id, the shared store."""

    def __init__(self, work: Path, index: int, centre: CentreBroker, ca: Path, db: str, key: Path,
                 share: bool) -> None:  # fmt: skip
        self.index, self.db, self.key = index, db, key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        password_file = work / "centre.pw"
        password_file.write_text(CENTRE_PASSWORD)
        # The store is in the config as well as on the command line: `share_group` is checked against it.
        console: dict[str, object] = {
            "client_id": f"city-worker-{index}",
            "port": self.port,
            "db": db,
            "lists_dir": str(work / "lists"),
        }
        if share:
            console["share_group"] = SHARE_GROUP
        self.config = write_config(
            work / f"worker-{index}.yaml",
            broker={"host": "127.0.0.1", "port": centre.centre_port, "username": "centre", "keepalive_s": 5,
                    "password_file": str(password_file), "tls": {"enabled": True, "ca_file": str(ca)},
                    "reconnect_max_s": 2},
            console=console,
        )  # fmt: skip
        self.logs = work / f"worker-{index}"
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    def add_operator(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "edge", "--config", str(self.config), "centre", "operator", "add", OPERATOR,
             "--password-stdin", "--db", self.db],
            input=PASSWORD + "\n", capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"operator add: {done.stderr}")

    def start(self) -> None:
        self.starts += 1
        log = self.logs.with_name(f"{self.logs.name}.{self.starts}.log")
        self.process = start_cli("--config", self.config, "centre", "serve", "--db", self.db, "--key", self.key,
                                 log=log)  # fmt: skip
        wait_listening(self.process, self.port, 60, f"worker {self.index}", log.read_text)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.parent.glob(f"{self.logs.name}.*.log")))


def login(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30, headers={CSRF_HEADER: "1"})
    response = client.post("/api/login", json={"name": OPERATOR, "password": PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(f"login at {url}: {response.status_code} {response.text[:200]}")
    return client


class OperatorPage:
    """An operator's page on one worker: its server-sent events stream (opened again when it drops,
    as the page does) counts the notices that the events changed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.notices = 0
        self.drops = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self.client = login(url)
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        forever = httpx.Timeout(10, read=None)
        while not self._stop.is_set():
            try:
                stream = login(self.url)
                try:
                    with stream.stream("GET", "/api/stream", timeout=forever) as response:
                        for line in response.iter_lines():
                            if self._stop.is_set():
                                return
                            if line.startswith("data:") and json.loads(line[5:]).get("kind") == "events":
                                with self._changed:
                                    self.notices += 1
                                    self._changed.notify_all()
                finally:
                    stream.close()
            except (httpx.HTTPError, RuntimeError, OSError):
                pass  # the worker went away: the page opens its stream again, as the browser does
            if not self._stop.is_set():
                self.drops += 1
                self._stop.wait(0.5)

    def time_visible(self, site: str, box_id: str, event_id: str, published: float, timeout_s: float) -> float | None:
        """Seconds from `published` until the box's feed, fetched after a notice, holds the event."""
        deadline = time.monotonic() + timeout_s
        seen = -1
        while time.monotonic() < deadline:
            with self._changed:
                if self.notices == seen:
                    self._changed.wait(0.5)
                seen = self.notices
            try:
                events = self.client.get("/api/events", params={"site": site, "box_id": box_id, "limit": "50"})
            except httpx.HTTPError:
                continue
            if events.status_code == 401:  # a restarted worker: sessions live in the store, but log in again
                self.client = login(self.url)
                continue
            if events.status_code == 200 and any(e["event_id"] == event_id for e in events.json()["events"]):
                return time.time() - published
        return None

    def close(self) -> None:
        self._stop.set()
        self.client.close()


def stored_rows(db: str) -> list[tuple[str, float]]:
    """(event_id, received_at) of every row of the events table, read-only."""
    query = "SELECT event_id, received_at FROM events"
    if db.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(db) as reader:
            return [(str(e), float(r)) for e, r in reader.execute(query).fetchall()]
    if not Path(db).exists():
        return []
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as reader:
        return [(e, float(r)) for e, r in reader.execute(query).fetchall()]


class CpuSampler:
    """CPU seconds of each named process (a pid getter: a restarted worker is a new pid), every second."""

    def __init__(self, pids: dict[str, Callable[[], list[int]]]) -> None:
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float], float]] = []  # (at, role -> CPU s, machine busy s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _machine_busy_s() -> float:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while True:
            used = {}
            for role, getter in self.pids.items():
                used[role] = sum(s for pid in getter() if not math.isnan(s := cpu_seconds(pid)))
            self.samples.append((time.time(), used, self._machine_busy_s()))
            if self._stop.wait(1.0):
                return

    def window(self, start: float, end: float) -> dict[str, object]:
        """Per role: CPU seconds in [start, end], the mean share of one core, and the busiest second's."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {}
        span = inside[-1][0] - inside[0][0]
        roles: dict[str, dict[str, float]] = {}
        for role in self.pids:
            steps = [max(0.0, (b[1][role] - a[1][role]) / (b[0] - a[0])) for a, b in itertools.pairwise(inside)]
            roles[role] = {
                "cpu_s": round(sum(max(0.0, b[1][role] - a[1][role]) for a, b in itertools.pairwise(inside)), 1),
                "mean_core_share": round(sum(max(0.0, b[1][role] - a[1][role]) for a, b in itertools.pairwise(inside))
                                         / span, 3),
                "busiest_second_core_share": round(max(steps, default=0.0), 3),
            }  # fmt: skip
        machine = (inside[-1][2] - inside[0][2]) / span / (os.cpu_count() or 1)
        return {"window_s": round(span, 1), "machine_busy_share": round(machine, 3), "processes": roles}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class HasPid(Protocol):
    @property
    def pid(self) -> int | None: ...


def process_pids(process_of: Callable[[], HasPid | None]) -> Callable[[], list[int]]:
    """A pid getter for the CPU sampler: the process's pid, or none while it is not running."""

    def pids() -> list[int]:
        process = process_of()
        return [process.pid] if process is not None and process.pid is not None else []

    return pids


def district_process(district: DistrictBroker) -> Callable[[], HasPid | None]:
    return lambda: district.process


def constant(pid: int | None) -> Callable[[], list[int]]:
    return lambda: [pid] if pid is not None else []


def worker_pids(worker: Worker) -> Callable[[], list[int]]:
    """A worker and its children (a restarted worker is a new process)."""
    return lambda: children_of(worker.process.pid) if worker.process is not None else []


def children_of(pid: int) -> list[int]:
    """`pid` and its child processes (a worker's: uvicorn runs in the process itself)."""
    found = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the store's, with --db postgresql://...)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip().startswith("postgres"):
                found.append(int(comm.parent.name))
        except (OSError, ValueError):
            continue
    return found


def what_limits(cpu: dict[str, object]) -> str:
    """The process nearest to a full core (a Python worker or a mosquitto each use about one), and
    whether the machine itself had CPU left."""
    processes = cpu.get("processes", {})
    assert isinstance(processes, dict)
    if not processes:
        return "no CPU samples"
    role, figures = max(processes.items(), key=lambda kv: kv[1]["mean_core_share"])
    machine = cpu.get("machine_busy_share", 0.0)
    assert isinstance(machine, float)
    verdict = (f"{role}: {figures['mean_core_share']:.0%} of a core on average over the load, "
               f"{figures['busiest_second_core_share']:.0%} in its busiest second")  # fmt: skip
    if machine >= 0.9:
        verdict += f"; the machine's {os.cpu_count()} CPUs were {machine:.0%} busy, so every process waited for CPU"
    return verdict


# --- the run ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--per-site", type=int, default=10, help="boxes per site")
    parser.add_argument("--events", type=int, default=30000, help="distinct events sent by the load")
    parser.add_argument("--rate", type=float, default=250, help="new events per second, all boxes together")
    parser.add_argument("--panic-share", type=float, default=0.02)
    parser.add_argument("--heartbeat-s", type=float, default=10, help="each box heartbeats this often")
    parser.add_argument("--resend-after-s", type=float, default=30, help="a box resends an unconfirmed event")
    parser.add_argument("--resend-max-s", type=float, default=300, help="the resend wait doubles up to this")
    parser.add_argument("--box-processes", type=int, default=0, help="child processes for the boxes (0: 1 per 250)")
    parser.add_argument("--workers", type=int, default=2, help="console workers (> 1 needs console.share_group)")
    parser.add_argument("--db", help="the store: a SQLite path or a postgresql:// URL (default: SQLite in tmp)")
    parser.add_argument("--cut-s", type=float, default=60, help="how long the first district's link is cut")
    parser.add_argument("--cut-mode", choices=("reset", "close"), default="reset",
                        help="how the cut drops the link's connections: TCP reset, or a plain close (FIN)")  # fmt: skip
    parser.add_argument("--cut-at", type=float, default=0.25, help="when the cut starts, as a share of the load")
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL a console worker mid-load")
    parser.add_argument("--kill-at", type=float, default=0.6, help="when, as a share of the load")
    parser.add_argument("--restart-s", type=float, default=5, help="the killed worker starts again this much later")
    parser.add_argument("--probe-gap-s", type=float, default=1.0, help="between timed alerts under load")
    parser.add_argument("--idle-probes", type=int, default=20, help="timed alerts after the load")
    parser.add_argument("--receipt-timeout-s", type=float, default=300)
    parser.add_argument(
        "--temp-postgres",
        action="store_true",
        help="start a throwaway PostgreSQL (Debian's package, as the tests do) and use it as --db",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "bench" / "city.json")
    args = parser.parse_args()
    # Several workers share the boxes' topics (console.share_group), which the centre allows only on a
    # PostgreSQL store they all write; one worker keeps the plain subscription, on either store.
    share = args.workers > 1
    if share and not (args.db or "").startswith("postgresql://") and not args.temp_postgres:
        parser.error("--workers > 1 needs --db postgresql://… (console.share_group: workers share one database)")
    if not args.temp_postgres:
        return run(args, share)
    postgres = Postgres().start()  # a throwaway cluster, as the tests start one
    try:
        args.db = postgres.new_database()
        return run(args, share)
    finally:
        postgres.stop()


def run(args: argparse.Namespace, share: bool) -> int:
    sites = [f"site-{i:03d}" for i in range(math.ceil(args.boxes / args.per_site))]
    half = math.ceil(len(sites) / 2)
    district_sites = {DISTRICTS[0]: sites[:half], DISTRICTS[1]: sites[half:]}
    identities = [(sites[i // args.per_site], f"box-{i % args.per_site:02d}") for i in range(args.boxes)]
    district_of = {site: name for name, owned in district_sites.items() for site in owned}
    problems: list[str] = []
    results: dict[str, object] = {
        "boxes": args.boxes, "sites": len(sites), "districts": {k: len(v) for k, v in district_sites.items()},
        "events": args.events, "rate": args.rate, "workers": args.workers, "shared_subscriptions": share,
        "store": "postgresql" if args.db and args.db.startswith("postgres") else "sqlite", "cut_s": args.cut_s,
        "cut_mode": args.cut_mode, "kill_worker": args.kill_worker, "heartbeat_s": args.heartbeat_s,
        "resend_after_s": args.resend_after_s, "resend_max_s": args.resend_max_s,
        "cpus": os.cpu_count(), "single_process_sqlite": SINGLE_PROCESS_SQLITE,
    }  # fmt: skip
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="gatebox-city-bench-") as tmp:
        work = Path(tmp)
        db = args.db or str(work / "centre.sqlite3")
        server, bridges = certificates(work / "tls")
        centre = CentreBroker(work / "centre", server, bridges, {"centre": CENTRE_PASSWORD}, district_sites)
        relays: dict[str, tuple[SpawnProcess, Connection, int]] = {}
        districts: dict[str, DistrictBroker] = {}
        workers: list[Worker] = []
        fleets: list[tuple[SpawnProcess, Connection]] = []
        page = sampler = None
        bench_started = time.monotonic()
        try:
            centre.start()
            for name in DISTRICTS:
                parent, child = context.Pipe()
                port = free_port()
                relay_process = context.Process(target=relay, args=(child, port, centre.bridge_port, args.cut_mode),
                                                daemon=True)  # fmt: skip
                relay_process.start()
                expect(parent, "ready", 30, relay_process)
                relays[name] = (relay_process, parent, port)
                districts[name] = DistrictBroker(
                    work / name, name, district_sites[name], centre, server, bridges.issue(name), open_boxes=True,
                    bridge_port=port, restart_timeout=None,
                )  # fmt: skip
                districts[name].start()
            generate_keypair(work / "centre.pem", work / "centre.pub.pem")
            workers = [Worker(work, i, centre, server.ca, db, work / "centre.pem", share) for i in range(args.workers)]
            workers[0].add_operator()
            for worker in workers:
                worker.start()

            # The boxes: one process per slice; the last slice's first box (of the district that is not cut)
            # sends the timed alerts, from a process of its own so its timing does not queue behind the load.
            ports = {name: districts[name].port for name in DISTRICTS}
            placed = [(site, box_id, ports[district_of[site]]) for site, box_id in identities]
            probe_box = next(b for b in placed if district_of[b[0]] == DISTRICTS[1])
            load_boxes = [b for b in placed if b != probe_box]
            processes = args.box_processes or max(1, math.ceil(len(load_boxes) / 250))
            slices = [load_boxes[k::processes] for k in range(processes)] + [[probe_box]]
            for boxes in slices:
                parent, child = context.Pipe()
                box_process = context.Process(target=fleet, daemon=True, args=(
                    child, boxes, str(work / "centre.pub.pem"), args.heartbeat_s, args.resend_after_s,
                    args.resend_max_s))  # fmt: skip
                box_process.start()
                fleets.append((box_process, parent))
            for box_process, parent in fleets:
                expect(parent, "ready", 300, box_process)
            probe_process, probe_conn = fleets[-1]
            page = OperatorPage(workers[0].url)
            wait_online(page.client, args.boxes, 120, problems)

            pids: dict[str, Callable[[], list[int]]] = {
                "centre mosquitto": process_pids(lambda: centre.process),
                **{f"{name} mosquitto": process_pids(district_process(districts[name])) for name in DISTRICTS},
                **{f"worker {w.index}": worker_pids(w) for w in workers},
                **{f"boxes {k}": constant(p.pid) for k, (p, _) in enumerate(fleets[:-1])},
                "link relays": lambda: [p.pid for p, _, _ in relays.values() if p.pid is not None],
                "operator (this script)": lambda: [os.getpid()],
                "postgresql": postgres_pids,
            }  # fmt: skip
            sampler = CpuSampler(pids)

            # The load, with the cut and the kill on a timeline beside it, and the page timed throughout.
            expected_s = args.events / args.rate
            share_each = [args.events // processes + (k < args.events % processes) for k in range(processes)]
            for k, (_, parent) in enumerate(fleets[:-1]):
                parent.send(("load", {"events": share_each[k], "rate": args.rate / processes,
                                      "panic_share": args.panic_share, "seed": args.seed + k}))  # fmt: skip
            load_started = time.time()
            timeline = Timeline(relays[DISTRICTS[0]][1], workers[-1] if args.kill_worker else None, args, expected_s)
            timeline.start()
            under_load: list[tuple[float, float | None]] = []  # (published, seconds to the page or None)
            loaded: dict[int, dict] = {}
            while len(loaded) < processes:
                for k, (box_process, parent) in enumerate(fleets[:-1]):
                    if k not in loaded and parent.poll():
                        loaded[k] = expect(parent, "loaded", 1, box_process)
                under_load.append(probe(probe_conn, probe_process, page, probe_box, 60))
                time.sleep(args.probe_gap_s)
            load_ended = time.time()
            timeline.join()
            for _, parent in fleets:
                parent.send(("receipts", args.receipt_timeout_s))
            receipts = [expect(parent, "receipts", args.receipt_timeout_s + 30, box_process)
                        for box_process, parent in fleets]  # fmt: skip
            all_confirmed = max(float(r["at"]) for r in receipts)
            missing_receipts = sum(r["missing"] for r in receipts)
            if missing_receipts:
                problems.append(f"{missing_receipts} events never confirmed to their box")

            idle = [probe(probe_conn, probe_process, page, probe_box, 30) for _ in range(args.idle_probes)]

            # Stored exactly once?
            records = [r for got in loaded.values() for r in got["records"]]
            sends = (min(got["started"] for got in loaded.values()), max(got["ended"] for got in loaded.values()))
            probes_sent = len(under_load) + len(idle)
            rows = stored_rows(db)
            per_id = Counter(e for e, _ in rows)
            received = {e: r for e, r in rows}
            sent_ids = {r[0] for r in records}
            missing = [e for e in sent_ids if e not in per_id]
            duplicated = {e: n for e, n in per_id.items() if n > 1}
            if missing:
                problems.append(f"{len(missing)} of {len(sent_ids)} events not stored (e.g. {missing[0]})")
            if duplicated:
                problems.append(f"{len(duplicated)} events stored more than once (e.g. {next(iter(duplicated))})")
            if len(per_id) != len(sent_ids) + probes_sent:
                problems.append(f"{len(per_id)} distinct events stored for {len(sent_ids)} + {probes_sent} probes sent")

            cut = timeline.cut_window
            stored_at = sorted(received[e] for e in sent_ids if e in received)

            def held_back(site: str, at: float) -> bool:
                """Sent by a box of the cut district while its link was cut."""
                return district_of[site] == DISTRICTS[0] and cut is not None and cut[0] <= at <= cut[1]

            lags = [(held_back(site, at), received[e] - at) for e, site, _, at in records if e in received]
            behind_cut = [lag for held, lag in lags if held]
            elsewhere = [lag for held, lag in lags if not held]
            relay_stats = ask(relays[DISTRICTS[0]][1], "stats")
            cpu = sampler.window(load_started, max(load_ended, stored_at[-1] if stored_at else load_ended))
            ingest = {
                "events_per_s_end_to_end": round(len(stored_at) / ((stored_at[-1] if stored_at else load_ended)
                                                                   - load_started), 1),
                "best_5s_events_per_s": best_window_rate(stored_at, 5.0),
                "offered_events_per_s": round(len(records) / (sends[1] - sends[0]), 1),
                "publish_to_stored_ms": {"not_behind_the_cut": stats(elsewhere), "behind_the_cut": stats(behind_cut)},
                "last_stored_after_last_send_s": round((stored_at[-1] if stored_at else 0) - sends[1], 1),
                "all_confirmed_after_last_send_s": round(all_confirmed - sends[1], 1),
                "resends": sum(int(r["resends"]) for r in receipts),
            }  # fmt: skip
            results.update({
                "stored": {"rows": len(rows), "distinct": len(per_id), "sent": len(sent_ids), "probes": probes_sent,
                           "missing": len(missing), "duplicated": len(duplicated),
                           "receipts_missing": missing_receipts},
                "ingest": ingest,
                "feed_ms": {
                    "raised_to_page_under_load": stats([s for _, s in under_load if s is not None]),
                    "raised_to_page_idle": stats([s for _, s in idle if s is not None]),
                    "never_shown": sum(s is None for _, s in under_load + idle),
                    "sse_reconnects": page.drops,
                },
                "cut": {
                    "district": DISTRICTS[0], "from_s": round(cut[0] - load_started, 1) if cut else None,
                    "for_s": round(cut[1] - cut[0], 1) if cut else None,
                    "bridge_back_after_restore_s": round(float(relay_stats["reconnected_at"])
                                                         - float(relay_stats["restored_at"]), 1)
                    if relay_stats.get("reconnected_at") and relay_stats.get("restored_at") else None,
                    "events_sent_during_it": len(behind_cut),
                },
                "worker_kill": timeline.kill_report(load_started),
                "cpu_during_load": cpu,
                "limits_next": what_limits(cpu),
                "load_s": round(load_ended - load_started, 1),
            })  # fmt: skip
        finally:
            # Every step runs even when one before it fails: nothing this run started may outlive it.
            if page is not None:
                attempt(page.close, "close the operator's page")
            if sampler is not None:
                attempt(sampler.close, "stop the CPU sampler")
            for box_process, parent in fleets:
                attempt(functools.partial(close_child, box_process, parent), f"close boxes' process {box_process.pid}")
            logs = "".join(w.log_text() for w in workers)
            for worker in workers:
                attempt(worker.stop, f"stop worker {worker.index}")
            for district in districts.values():
                attempt(district.stop, f"stop {district.name}'s broker")
            for relay_process, parent, _ in relays.values():
                attempt(functools.partial(close_child, relay_process, parent, "close"), "close a link relay")
            attempt(centre.stop, "stop the centre's broker")
        errors = sum(" ERROR " in line or '"ERROR"' in line for line in logs.splitlines())
        if logs.count("Traceback") or errors:
            problems.append(f"the workers logged {errors} errors, {logs.count('Traceback')} tracebacks")
        results.update({"problems": problems, "ok": not problems, "run_s": round(time.monotonic() - bench_started)})
    summary(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if not problems else 1


class Timeline(threading.Thread):
    """Beside the load: the first district's link cut at --cut-at of the load for --cut-s, and (with
    --kill-worker) the last worker SIGKILLed at --kill-at and started again --restart-s later."""

    def __init__(self, link, worker: Worker | None, args: argparse.Namespace, expected_s: float) -> None:
        super().__init__(daemon=True)
        self.link, self.worker, self.args, self.expected_s = link, worker, args, expected_s
        self.cut_window: tuple[float, float] | None = None
        self.killed_at = self.restarted_at = None

    def run(self) -> None:
        started = time.time()
        steps: list[tuple[float, str]] = []
        if self.args.cut_s > 0:
            steps += [(self.args.cut_at * self.expected_s, "cut"),
                      (self.args.cut_at * self.expected_s + self.args.cut_s, "restore")]  # fmt: skip
        if self.worker is not None:
            steps += [(self.args.kill_at * self.expected_s, "kill"),
                      (self.args.kill_at * self.expected_s + self.args.restart_s, "restart")]  # fmt: skip
        cut_from = None
        for at, step in sorted(steps):
            if (wait := started + at - time.time()) > 0:
                time.sleep(wait)
            if step == "cut":
                cut_from = ask(self.link, "cut")
            elif step == "restore":
                self.cut_window = (float(cut_from), float(ask(self.link, "restore")))  # type: ignore[arg-type]
            elif step == "kill" and self.worker is not None:
                self.killed_at = time.time()  # type: ignore[assignment]
                self.worker.kill()
            elif step == "restart" and self.worker is not None:
                self.worker.start()
                self.restarted_at = time.time()  # type: ignore[assignment]

    def kill_report(self, load_started: float) -> dict[str, object] | None:
        if self.worker is None or self.killed_at is None:
            return None
        return {"worker": self.worker.index, "at_s": round(self.killed_at - load_started, 1),
                "listening_again_after_s": round(self.restarted_at - self.killed_at, 1)
                if self.restarted_at else None}  # fmt: skip


def attempt(step: Callable[[], object], what: str) -> None:
    """One step of tearing the run down: a failure is reported and the next step still runs."""
    try:
        step()
    except Exception as e:  # reported; the teardown goes on
        print(f"teardown: could not {what}: {e!r}", file=sys.stderr)


def close_child(process: SpawnProcess, conn: Connection, command: object = ("close", None)) -> None:
    """Ask a child process to finish, then make sure it has."""
    try:
        if process.is_alive():
            conn.send(command)
            if conn.poll(30):
                conn.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(10)


def ask(conn: Connection, command: str) -> Any:
    """One command to a link relay and its answer."""
    conn.send(command)
    return conn.recv()[1]


def probe(conn, process, page: OperatorPage, box: tuple[str, str, int], timeout_s: float) -> tuple[float, float | None]:
    """One alert from the probe box, timed to the operator's page."""
    event_id = uuid.uuid4().hex
    conn.send(("alert", (0, event_id)))
    published = expect(conn, "published", 10, process)
    return published, page.time_visible(box[0], box[1], event_id, published, timeout_s)


def best_window_rate(stored_at: list[float], window_s: float) -> float:
    """The most events stored in any `window_s` seconds, per second."""
    best, first = 0, 0
    for last, at in enumerate(stored_at):
        while at - stored_at[first] > window_s:
            first += 1
        best = max(best, last - first + 1)
    return round(best / window_s, 1)


def wait_online(client: httpx.Client, count: int, timeout_s: float, problems: list[str]) -> None:
    """Until the console lists every box online: heartbeats from both districts crossed their bridges."""
    deadline = time.monotonic() + timeout_s
    while True:
        boxes = client.get("/api/boxes").json()["boxes"]
        online = sum(box["status"] == "online" for box in boxes)
        if online >= count:
            return
        if time.monotonic() > deadline:
            problems.append(f"only {online} of {count} boxes online before the load")
            return
        time.sleep(0.5)


def summary(results: dict) -> None:
    def cell(s: dict) -> str:
        return f"n {s['n']}, p50 {s.get('p50', '-')}, p95 {s.get('p95', '-')}, max {s.get('max', '-')} ms"

    print(f"city: {results['boxes']} boxes on {results['sites']} sites in {results['districts']}, "
          f"{results['workers']} worker(s) ({'shared subscription' if results['shared_subscriptions'] else 'alone'}),"
          f" {results['store']}; {results['events']} events at {results['rate']}/s; cut {results['cut_s']} s; "
          f"kill a worker: {results['kill_worker']}")  # fmt: skip
    if "stored" in results:
        stored, ingest, feed = results["stored"], results["ingest"], results["feed_ms"]
        print(f"stored: {stored}")
        print(f"ingest: {ingest['events_per_s_end_to_end']} events/s end to end (offered "
              f"{ingest['offered_events_per_s']}), best 5 s {ingest['best_5s_events_per_s']}/s; "
              f"{ingest['resends']} resends; all confirmed {ingest['all_confirmed_after_last_send_s']} s after the "
              f"last send")  # fmt: skip
        for name, s in ingest["publish_to_stored_ms"].items():
            print(f"  publish -> stored, {name}: {cell(s)}")
        print(f"feed (raised -> on the page): under load {cell(feed['raised_to_page_under_load'])}; "
              f"idle {cell(feed['raised_to_page_idle'])}; never shown {feed['never_shown']}")  # fmt: skip
        print(f"cut: {results['cut']}; worker kill: {results['worker_kill']}")
        for role, figures in results["cpu_during_load"].get("processes", {}).items():
            print(f"  CPU {role:<24} {figures}")
        print(f"limits next: {results['limits_next']}")
    for problem in results["problems"]:
        print(f"PROBLEM: {problem}")
    print("OK" if results["ok"] else "FAILED", f"in {results['run_s']} s")


if __name__ == "__main__":
    sys.exit(main())
