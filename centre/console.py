"""The console's back end: receives what every box sends (stored, then confirmed), tells the open
pages what changed, sends operators' acks to the boxes and builds and publishes list versions.
The web layer (`centre.web`) only translates HTTP to these calls."""

from __future__ import annotations

import asyncio
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from centre.commands import publish_ack
from centre.config import CentreConfig, ConsoleConfig
from centre.lists import (
    build,
    check_source,
    merged_blob,
    publish,
    read_bundle,
    without_subjects,
    write_bundle,
)
from centre.record import Recorder, subscriptions
from centre.store import AmbiguousEvent, CentreStore, Ingested
from centre.uploads import ZipLimits, unzip_photos
from edge.protocol.bundle import decode
from edge.protocol.errors import InputError
from edge.protocol.mqtt import disconnect, make_client
from edge.protocol.signing import load_private_key

log = logging.getLogger(__name__)

UNZIPPED_PER_UPLOADED = 4  # a photo zip may unpack to this many times `console.max_upload_mb`
PRUNE_INTERVAL_S = 600.0  # how often old face snapshots are looked for


class NotFound(Exception):
    """No such event or list."""


class Unavailable(Exception):
    """The action needs something the console lacks right now (broker link, signing key)."""


class Conflict(Exception):
    """The event is already in (or past) the state asked for."""


class Changes:
    """Tells every open page what changed, at most once per `interval_s` per kind (with 200 boxes
    reporting, a page refetches a few times a second, not 200 times); an urgent change (a new
    panic) goes out at once."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, bool]] = {}
        self._pages: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, object] | None]]] = set()
        self._stop = threading.Event()
        self._urgent = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-changes", daemon=True)
        self._thread.start()

    def mark(self, kind: str, urgent: bool = False, **flags: bool) -> None:
        with self._lock:
            pending = self._pending.setdefault(kind, {})
            for flag, value in flags.items():
                pending[flag] = pending.get(flag, False) or value
        if urgent:
            self._urgent.set()

    def subscribe(self) -> asyncio.Queue[dict[str, object] | None]:
        """A page's queue of changes (call from the event loop); None means the console is stopping."""
        page: asyncio.Queue[dict[str, object] | None] = asyncio.Queue(maxsize=64)
        with self._lock:
            self._pages.add((asyncio.get_running_loop(), page))
        return page

    def unsubscribe(self, page: asyncio.Queue[dict[str, object] | None]) -> None:
        with self._lock:
            self._pages = {(loop, q) for loop, q in self._pages if q is not page}

    def close(self) -> None:
        self._stop.set()
        self._urgent.set()
        self._thread.join(5)
        self._send(None)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._urgent.wait(self._interval_s)
            self._urgent.clear()
            with self._lock:
                pending, self._pending = self._pending, {}
            for kind, flags in pending.items():
                self._send({"kind": kind, **flags})

    def _send(self, change: dict[str, object] | None) -> None:
        with self._lock:
            pages = list(self._pages)
        for loop, page in pages:
            try:
                loop.call_soon_threadsafe(_offer, page, change)
            except RuntimeError:  # that page's loop is closed
                self.unsubscribe(page)


def _offer(page: asyncio.Queue[dict[str, object] | None], change: dict[str, object] | None) -> None:
    if not page.full():  # a page that far behind refetches everything on its next change anyway
        page.put_nowait(change)


class Console:
    def __init__(self, config: CentreConfig, settings: ConsoleConfig, key_path: Path | None) -> None:
        self.config = config
        self.settings = settings
        self.store = CentreStore(settings.db, settings.max_message_kb * 1024)
        self.changes = Changes()
        self.lists_dir = settings.db.parent / "lists"
        self._key_path = key_path
        self._key = load_private_key(key_path) if key_path else None
        self._list_lock = threading.Lock()
        self._inbox: queue.Queue = queue.Queue()
        broker = config.broker
        # A persistent session: heartbeats, alert states and list acks sent while the console
        # restarts are queued by the broker (alerts and panics are resent by the boxes anyway).
        self._client = make_client(broker, client_id=settings.client_id, clean_session=False)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda *args: self.changes.mark("status")
        self._client.on_message = lambda client, userdata, message: self._inbox.put(message)
        # Asynchronous connect: the console serves its pages (and says the broker is down) even
        # when the broker is not up yet; paho keeps retrying.
        self._client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s)
        self._client.loop_start()
        self.recorder = Recorder(self.store, self._client, broker.topic_prefix)
        self._stop = threading.Event()
        self._receiving = True
        self._receiver = threading.Thread(target=self._receive, name="console-receiver", daemon=True)
        self._receiver.start()

    def close(self) -> None:
        self._stop.set()
        self._receiver.join(5)
        disconnect(self._client)
        self.changes.close()
        self.store.close()

    @property
    def broker_connected(self) -> bool:
        return self._client.is_connected()

    @property
    def receiving(self) -> bool:
        """Whether the receiver thread is alive: without it nothing boxes send is stored or
        confirmed, whatever the broker link says."""
        return self._receiving and self._receiver.is_alive()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:  # type: ignore[no-untyped-def]
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in subscriptions(self.config.broker)])
        self.changes.mark("status")

    def _receive(self) -> None:
        """The receiver thread. Nothing one message does may end it (the Recorder counts and logs
        what it refuses or fails on); should it end anyway, that is logged and the pages are told
        (`receiving` goes false, the page shows the receiver stopped)."""
        try:
            next_pruning = time.monotonic()
            while not self._stop.is_set():
                if time.monotonic() >= next_pruning:
                    next_pruning = time.monotonic() + PRUNE_INTERVAL_S
                    try:
                        self._forget_old_snapshots()
                    except Exception:
                        log.exception("could not delete old face snapshots; trying again in %g s", PRUNE_INTERVAL_S)
                try:
                    message = self._inbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                try:
                    self._tell_pages(self.recorder.handle(message))
                except Exception:
                    self.recorder.refusals.note("pages:error", "could not tell the pages what changed", logging.ERROR,
                                                exc_info=True)  # fmt: skip
        except BaseException:
            log.critical("the console's receiver stopped: nothing the boxes send is stored or confirmed until "
                         "the console restarts", exc_info=True)  # fmt: skip
            raise
        finally:
            if not self._stop.is_set():
                self._receiving = False
                self.changes.mark("status", urgent=True)

    def _tell_pages(self, result: Ingested | None) -> None:
        if result is None:  # refused
            return
        if result.kind in ("alert", "panic") and result.new:
            panic = result.kind == "panic"
            self.changes.mark("events", urgent=panic, new_panic=panic)
        elif result.kind == "alert_state":
            self.changes.mark("events")
        elif result.kind in ("heartbeat", "availability") and self._box_status_changed(result):
            self.changes.mark("boxes")
        elif result.kind == "list_ack":
            self.changes.mark("boxes")
            self.changes.mark("lists")

    def _box_status_changed(self, result: Ingested) -> bool:
        """Whether the page's box table shows something new: a box appeared, went on- or offline,
        or was heard again after being shown silent. A routine heartbeat is not news (the page
        refreshes fps and ages on its own every few seconds)."""
        before = result.box_before
        if before is None or before.online != result.box_online:
            return True
        return before.last_seen is None or time.time() - before.last_seen > self.settings.silent_after_s

    def _forget_old_snapshots(self) -> None:
        self.store.passages.forget_snapshots(time.time())  # passage face views past their snapshot_expires_at
        forgotten = self.store.forget_snapshots(time.time() - self.settings.closed_snapshot_days * 86400)
        if forgotten:
            log.info("deleted %d face snapshot(s) of events closed over %g days ago", forgotten,
                     self.settings.closed_snapshot_days)  # fmt: skip

    # --- events ---------------------------------------------------------------------------------

    def act(self, event_id: str, state: str, note: str | None, by: str, site: str | None = None,
            box_id: str | None = None) -> dict[str, object]:  # fmt: skip
        """Acknowledge or close an event (of the box `site`/`box_id`, needed only when several
        boxes sent that id): recorded here, then sent signed to its box, which confirms with its
        `alert_state`. Raises NotFound, Conflict or Unavailable."""
        try:
            key = self.store.find(event_id, site, box_id)
        except AmbiguousEvent as e:
            raise Conflict(str(e)) from None
        if key is None:
            raise NotFound(event_id)
        event = self.store.event(event_id, *key) or {}
        if self._key is None:
            raise Unavailable("the console has no signing key (console.signing_key or $GATEBOX_CENTRE_KEY)")
        if not self.broker_connected:
            raise Unavailable("the console is not connected to the broker; try again")
        outcome = self.store.claim_action(key, event_id, state, note, by, self.settings.ack_resend_after_s)
        if outcome == "unknown":
            raise NotFound(event_id)
        if outcome == "already":
            current = self.store.event(event_id, *key) or {}
            raise Conflict(f"{event_id} is already {current.get('requested_state') or current.get('state')}")
        try:
            sent = publish_ack(self._client, self.config.broker.topic_prefix, self._key, str(event["site"]),
                               str(event["box_id"]), event_id, state, note, by, timeout_s=5)  # fmt: skip
        except (ValueError, RuntimeError) as e:
            log.warning("ack for %s not sent: %s", event_id, e)
            sent = False
        if not sent:
            self.store.release_action(key, event_id, state)
            raise Unavailable("the broker did not take the command; try again")
        log.info("%s %s by %s (note: %s)", event_id, state, by, note or "-")
        self.changes.mark("events")
        return self.store.event(event_id, *key) or {}

    # --- boxes and lists ------------------------------------------------------------------------

    def lists(self) -> list[dict[str, object]]:
        """Each configured list: its kind, what the centre published last, and the version each box applied."""
        boxes = self.store.boxes()
        out = []
        for name, kind in self.config.lists.items():
            published = self.store.published(name)
            if published:
                published = {k: v for k, v in published.items() if k != "bundle"}
            applied = [{"site": b["site"], "box_id": b["box_id"], "version": b["lists"].get(name)} for b in boxes]
            out.append({"list": name, "kind": kind, "published": published, "boxes": applied})
        return out

    def publish_upload(
        self, list_name: str, by: str, mode: str, photos_zip: bytes | None = None, plates_csv: bytes | None = None,
        meta_csv: bytes | None = None,
    ) -> dict[str, object]:  # fmt: skip
        """Build a version from an upload (a zip of one folder of photos per subject, or a plate CSV)
        and publish it: `replace` makes it the whole list, `add` adds it to the last version."""
        self._check_list(list_name)
        if (photos_zip is None) == (plates_csv is None):
            raise InputError("send either `photos` (a zip: one folder of photos per subject) or `plates` (a CSV)")
        check_source(self.config, list_name, photos=photos_zip is not None, plates=plates_csv is not None)
        with tempfile.TemporaryDirectory(prefix="gatebox-upload-") as tmp:
            folder = Path(tmp)
            photos = plates = meta = None
            if photos_zip is not None:
                limits = ZipLimits(total_bytes=UNZIPPED_PER_UPLOADED * self.settings.max_upload_mb * 2**20)
                photos = unzip_photos(photos_zip, folder / "photos", limits)
            if plates_csv is not None:
                plates = folder / "plates.csv"
                plates.write_bytes(plates_csv)
            if meta_csv is not None:
                meta = folder / "meta.csv"
                meta.write_bytes(meta_csv)
            bundle = folder / "upload.gbl"
            try:
                build(self.config, list_name, 1, photos, meta, bundle, plates)
            except InputError as e:  # name the uploaded file, not our temporary copy
                raise InputError(str(e).replace(f"{folder}/photos/", "").replace(f"{folder}/", "")) from None
            _, _, blob = read_bundle(bundle)
        return self._publish(list_name, by, lambda base: merged_blob(base, blob) if mode == "add" and base else blob)

    def remove_subjects(self, list_name: str, subject_ids: list[str], by: str) -> dict[str, object]:
        """Publish a version without `subject_ids` (found, or taken off the list)."""
        self._check_list(list_name)

        def shrink(base: bytes | None) -> bytes:
            if base is None:
                raise InputError(f"nothing published for {list_name} from this console yet")
            blob, missing = without_subjects(base, set(subject_ids))
            if missing:
                raise InputError(f"not on {list_name}: {', '.join(missing)}")
            return blob

        return self._publish(list_name, by, shrink)

    def _check_list(self, list_name: str) -> None:
        if list_name not in self.config.lists:
            raise NotFound(list_name)
        if self._key_path is None:
            raise Unavailable("the console has no signing key (console.signing_key or $GATEBOX_CENTRE_KEY)")

    def _publish(self, list_name: str, by: str, make_blob: Callable[[bytes | None], bytes]) -> dict[str, object]:
        with self._list_lock:  # versions are issued one at a time
            last = self.store.published(list_name)
            base = read_bundle(Path(str(last["bundle"])))[2] if last else None
            blob = make_blob(base)
            version = self.store.highest_version(list_name) + 1
            entries = len(decode(blob, "full").entries)
            bundle = self.lists_dir / list_name / f"v{version}.gbl"
            bundle.parent.mkdir(parents=True, exist_ok=True)
            write_bundle(bundle, list_name, version, blob)
            assert self._key_path is not None
            try:
                manifest = publish(self.config.broker, self._key_path, bundle)
                self.store.record_published(list_name, version, entries, bundle, by)
            except BaseException:
                bundle.unlink(missing_ok=True)  # not published: the last one stays the base
                raise
            _prune_bundles(bundle)
        log.info("published %s v%d (%d entries) for %s", list_name, version, entries, by)
        self.changes.mark("lists")
        return {"list": list_name, "version": version, "entries": entries, "size": manifest.size}


def _prune_bundles(latest: Path) -> None:
    """Delete the list's older bundles: the latest is the base of the next version (the boxes hold
    what they applied), and an old one would keep a removed subject's face on disk for ever."""
    for old in latest.parent.glob("v*.gbl"):
        if old != latest:
            old.unlink(missing_ok=True)
