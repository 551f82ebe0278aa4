"""The console's back end: receives what every box sends (stored, then confirmed), tells the open
pages what changed, sends operators' acks to the boxes and builds and publishes list versions.
The web layer (`centre.web`) only translates HTTP to these calls."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.client import topic_matches_sub as mqtt_topic_matches
from paho.mqtt.reasoncodes import ReasonCode

from centre.commands import publish_ack, publish_preview_request
from centre.config import CentreConfig, ConsoleConfig
from centre.lists import (
    PHOTO_SUFFIXES,
    build,
    check_source,
    merged_blob,
    publish,
    read_bundle,
    without_subjects,
    write_bundle,
)
from centre.previews import Previews
from centre.record import Recorder, subscriptions
from centre.references import subject_records
from centre.store import AmbiguousEvent, CentreStore, Ingested, SubjectRecord
from centre.strength import match_strength
from centre.uploads import ZipLimits, unzip_photos
from centre.workers import SharedChanges, shared_topic
from edge.protocol import topics
from edge.protocol.bundle import Manifest, decode
from edge.protocol.errors import InputError
from edge.protocol.messages import AckState
from edge.protocol.mqtt import disconnect, make_client
from edge.protocol.signing import BadSignature, load_private_key, open_sealed
from edge.protocol.wire import Refused

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
        self.previews = Previews()  # the boxes' latest camera previews, in memory only
        # Workers sharing a PostgreSQL database hear of each other's changes (SQLite: one console, in-process).
        self.shared_changes = SharedChanges(self.store, self.changes) if self.store.shared else None
        self.lists_dir = settings.lists_folder
        self._key_path = key_path
        self._key = load_private_key(key_path) if key_path else None
        self._list_lock = threading.Lock()
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        broker = config.broker
        # A persistent session: heartbeats, alert states and list acks sent while the console
        # restarts are queued by the broker (alerts and panics are resent by the boxes anyway).
        self._client = make_client(broker, client_id=settings.client_id, clean_session=False)
        self._client.on_connect = self._on_connect
        # Set once the broker confirmed this connection's subscriptions: from then on what boxes send reaches us.
        self.subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: self.subscribed.set()
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
        if self.shared_changes is not None:
            self.shared_changes.close()
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

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, properties: object
    ) -> None:
        if not reason.is_failure:
            # With `share_group`, the boxes' messages go to one worker of the group each; the retained
            # manifests stay every worker's own (`centre.workers`).
            group = self.settings.share_group
            boxes = [shared_topic(topic, group) for topic in subscriptions(self.config.broker)]
            self.subscribed.clear()
            client.subscribe([(topic, 1) for topic in [*boxes, self._manifests_topic]])
            # QoS 0: a preview sent while the console was down is not worth keeping at the broker for it.
            # Never shared: every worker keeps the latest previews for the pages it serves.
            client.subscribe(self._previews_topic, 0)
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
                if mqtt_topic_matches(self._manifests_topic, message.topic):
                    self._note_manifest(message.topic, bytes(message.payload))
                    continue
                if mqtt_topic_matches(self._previews_topic, message.topic):
                    self._keep_preview(message.topic, bytes(message.payload))
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

    @property
    def _manifests_topic(self) -> str:
        """Every list's manifests (full and delta), retained: the versions in force, whoever published them."""
        return f"{self.config.broker.topic_prefix}/lists/+/+/manifest"

    @property
    def _previews_topic(self) -> str:
        return topics.centre_topic(self.config.broker.topic_prefix, topics.PREVIEW)

    def _keep_preview(self, topic: str, payload: bytes) -> None:
        """A box's camera preview: held (in memory) for its Preview dialog, and the open pages told."""
        try:
            self.previews.ingest(topic, payload)
        except Refused as e:
            self.recorder.refusals.note(f"preview:{e.reason}", f"refused a preview on {topic}: {e}")
            return
        self.changes.mark("previews")

    def request_preview(self, site: str, box_id: str, camera: str | None, by: str) -> dict[str, object]:
        """Ask a box (signed) for a preview of every camera, or of `camera`; it answers on its `preview`
        topic. Raises NotFound (a box never heard from) or Unavailable."""
        if not any(b["site"] == site and b["box_id"] == box_id for b in self.store.boxes()):
            raise NotFound(f"{site}/{box_id}")
        if self._key is None:
            raise Unavailable("the console has no signing key (console.signing_key or $GATEBOX_CENTRE_KEY)")
        if not self.broker_connected:
            raise Unavailable("the console is not connected to the broker; try again")
        request_id, requested_at = uuid.uuid4().hex, time.time()  # before sending: the answer may come at once
        try:
            sent = publish_preview_request(self._client, self.config.broker.topic_prefix, self._key, site, box_id,
                                           request_id, camera, by, timeout_s=5)  # fmt: skip
        except (ValueError, RuntimeError) as e:
            log.warning("preview request for %s/%s not sent: %s", site, box_id, e)
            sent = False
        if not sent:
            raise Unavailable("the broker did not take the request; try again")
        log.info("preview of %s/%s (%s) asked by %s", site, box_id, camera or "every camera", by)
        return {"request_id": request_id, "requested_at": requested_at}

    def _note_manifest(self, topic: str, payload: bytes) -> None:
        """Record a list version published by anyone with the centre's key (the CLI too), so the page
        tells what is in force and this console numbers its next version above it. Verified with the
        console's key; a console without one publishes nothing and only shows it."""
        if not payload:  # a cleared topic
            return
        try:
            if self._key is not None:
                body = open_sealed(payload, self._key.public_key())
            else:
                body = json.loads(json.loads(payload)["body"])
            manifest = Manifest.model_validate(body)
        except (BadSignature, ValueError, KeyError, TypeError) as e:
            self.recorder.refusals.note("manifest:invalid", f"ignored a list manifest on {topic}: {e}")
            return
        try:
            news = self.store.record_manifest(manifest)
        except Exception:
            self.recorder.refusals.note("manifest:error", f"could not record the manifest on {topic}", logging.ERROR,
                                        exc_info=True)  # fmt: skip
            return
        if news:
            self._changed("lists")

    def _changed(self, kind: str, urgent: bool = False, **flags: bool) -> None:
        """Tell this worker's pages, and the other workers' (who tell theirs)."""
        self.changes.mark(kind, urgent, **flags)
        if self.shared_changes is not None:
            self.shared_changes.announce(kind, urgent, **flags)

    def _tell_pages(self, result: Ingested | None) -> None:
        if result is None:  # refused
            return
        if result.kind in ("alert", "panic") and result.new:
            panic = result.kind == "panic"
            self._changed("events", urgent=panic, new_panic=panic)
        elif result.kind == "alert_state":
            self._changed("events")
        elif result.kind in ("heartbeat", "availability") and (
            self._box_status_changed(result) or result.lists_changed
        ):
            # (the page refetches its lists on this too: what a box holds shows in both)
            self._changed("boxes")
        elif result.kind == "list_ack":
            self._changed("boxes")
            self._changed("lists")
        elif result.kind == "passage" and result.new:
            self._changed("passages")  # the counts and the passage log (coalesced like every change)

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

    def act(self, event_id: str, state: AckState, note: str | None, by: str, site: str | None = None,
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
        self._changed("events")
        return self.store.event(event_id, *key) or {}

    def describe(self, events: list[dict[str, object]]) -> list[dict[str, object]]:
        """`events` (store rows) with what the page shows beside them: the subject's name, category and
        priority (the alert's own, else what the centre recorded when it built the list),
        `has_reference` (the centre holds an enrolled photo: `/api/subjects/…/reference.jpg`) and
        `strength` (`centre.strength`)."""
        known = self.store.subject_info(
            (str(e["list"]), str(e["subject_id"])) for e in events if not e.get("panic") and e.get("subject_id")
        )
        for event in events:
            if event.get("panic"):
                continue
            record = known.get((str(event["list"]), str(event["subject_id"])), {})
            for field in ("name", "category", "priority"):  # the alert's own (`subject_*`) first
                own = event.get(f"subject_{field}")
                event[field] = own if own is not None else record.get(field)
            event["has_reference"] = bool(record.get("has_reference"))
            strength = match_strength(event, self.config.match_thresholds(str(event["list"])))
            event["strength"] = strength.model_dump() if strength else None
        return events

    def describe_each(self, events: Iterable[dict[str, object]], batch: int = 500) -> Iterator[dict[str, object]]:
        """`describe`, a batch at a time, for a stream of events (an export)."""
        chunk: list[dict[str, object]] = []
        for event in events:
            chunk.append(event)
            if len(chunk) >= batch:
                yield from self.describe(chunk)
                chunk = []
        yield from self.describe(chunk)

    # --- the map --------------------------------------------------------------------------------

    def site_map(self) -> dict[str, object]:
        """What the page's map draws: each site (with its plan's bounds, if one is configured) and each
        gate at its place (configured in `console.gate_positions`, else as its box's latest event said)."""
        settings = self.settings
        boxes = self.store.boxes()
        gates: dict[str, dict[str, object]] = {}
        for reported in self.store.gates():
            gates[f"{reported['site']}/{reported['box_id']}"] = {**reported, "source": "reported"}
        for key, position in settings.gate_positions.items():
            site, box_id = key.split("/", 1)
            gate = position.gate or (gates.get(key) or {}).get("gate")
            gates[key] = {"site": site, "box_id": box_id, "gate": gate, "lat": position.lat, "lon": position.lon,
                          "seen_at": None, "source": "config"}  # fmt: skip
        sites = sorted({*settings.site_plans, *(str(g["site"]) for g in gates.values()),
                        *(str(b["site"]) for b in boxes)})  # fmt: skip
        plans = {
            site: {"url": f"/api/map/{site}/plan", **plan.model_dump(include={"north", "south", "west", "east"})}
            for site, plan in settings.site_plans.items()
        }
        return {"sites": [{"site": site, "plan": plans.get(site)} for site in sites],
                "gates": [gates[key] for key in sorted(gates)]}  # fmt: skip

    # --- boxes and lists ------------------------------------------------------------------------

    def lists(self) -> list[dict[str, object]]:
        """Each configured list: its kind, what the centre published last, and the version each box applied."""
        boxes = self.store.boxes()
        manifests = self.store.manifests()
        out: list[dict[str, object]] = []
        for name, kind in self.config.lists.items():
            last = self.store.published(name)
            published = {k: v for k, v in last.items() if k != "bundle"} if last else None
            applied = [{"site": b["site"], "box_id": b["box_id"], "version": b["lists"].get(name)} for b in boxes]
            # A newer version on the broker than this console's last was published by someone else (the CLI).
            on_broker = manifests.get(name)
            ours = published["version"] if published else 0
            elsewhere = on_broker if on_broker and int(str(on_broker["version"])) > int(str(ours)) else None
            out.append({"list": name, "kind": kind, "published": published, "published_elsewhere": elsewhere,
                        "boxes": applied})  # fmt: skip
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
            records = subject_records(list(decode(blob, "full").entries), photos, PHOTO_SUFFIXES)
        adding = mode == "add"
        return self._publish(list_name, by, lambda base: merged_blob(base, blob) if adding and base else blob,
                             records, adds_to_base=adding)  # fmt: skip

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

    def _publish(
        self, list_name: str, by: str, make_blob: Callable[[bytes | None], bytes],
        records: list[SubjectRecord] | None = None, adds_to_base: bool = True,
    ) -> dict[str, object]:  # fmt: skip
        """Publish the version `make_blob` makes of the last one this console published (None: none); then
        keep `records` (the subjects' details and photos) and forget the subjects no longer listed."""
        with self._list_lock:  # versions are issued one at a time
            last = self.store.published(list_name)
            ours = int(str(last["version"])) if last else 0
            newest = self.store.highest_version(list_name)  # ours, or one the CLI published (its manifest)
            if adds_to_base and newest > ours:
                raise InputError(
                    f"{list_name} v{newest} was published elsewhere (`gatebox centre lists publish` without --db); "
                    f"this console's last is {f'v{ours}' if ours else 'none'}, and adding to it would drop what "
                    f"v{newest} holds: publish the whole list (replace), or publish from the CLI with --db"
                )
            base = read_bundle(Path(str(last["bundle"])))[2] if last else None
            blob = make_blob(base)
            version = newest + 1
            listed = decode(blob, "full").entries
            entries = len(listed)
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
            if records:
                self.store.record_subjects(list_name, records)
            self.store.keep_subjects(list_name, (entry.subject_id for entry in listed))
        log.info("published %s v%d (%d entries) for %s", list_name, version, entries, by)
        self._changed("lists")
        return {"list": list_name, "version": version, "entries": entries, "size": manifest.size}


def _prune_bundles(latest: Path) -> None:
    """Delete the list's older bundles: the latest is the base of the next version (the boxes hold
    what they applied), and an old one would keep a removed subject's face on disk for ever."""
    for old in latest.parent.glob("v*.gbl"):
        if old != latest:
            old.unlink(missing_ok=True)
