"""Box side of list sync: collect a bundle's manifest and chunks from MQTT, verify, apply.

Nothing is applied until the whole bundle is in and verified: the signature over the manifest,
each chunk's sha256, the decoded data, and version continuity (a delta applies only on top of the
version the box holds) and the embedder that made its faces (the one the box runs). Until then,
and whenever a bundle is refused, the lists in force stay.
Applying runs in its own thread, so a 100,000-entry list never holds up the link.

Memory is bounded whatever arrives: a manifest is refused unread past `max_manifest_bytes` and at
once when it announces more than `max_list_bytes`; chunks that come before their manifest
(retained delivery has no order) are held up to `max_list_bytes` in all and dropped after
`timeout_s` if no manifest claims them.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.comms.link import Link
from edge.protocol.bounded_json import JsonRefused, check_json_bounds
from edge.protocol.bundle import CHUNK_BYTES, MAX_CHUNKS, MAX_VERSION, BundleError, Manifest, decode, sha256
from edge.protocol.embedding import DLIB_EMBEDDER, EmbedderMismatch
from edge.protocol.signing import BadSignature, open_sealed
from edge.store.lists import ListStore, VersionConflict

log = logging.getLogger(__name__)

Applied = Callable[[str, int, int], None]  # list name, version, entries
MAX_MANIFEST_DEPTH = 16  # a manifest envelope nests 1 deep
NUMBER = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() passes "²" and "٣", which int() refuses or takes
DEFAULT_MAX_LIST_BYTES = 256 * 1024 * 1024


@dataclass
class _Pending:
    manifest: Manifest
    started: float
    chunks: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class _EarlyChunk:
    payload: bytes
    arrived: float


class ListSync:
    def __init__(
        self,
        prefix: str,
        centre_key: Ed25519PublicKey | None,
        data_dir: Path,
        lists: Collection[str],
        on_applied: Applied,
        timeout_s: float = 120.0,
        max_list_bytes: int = DEFAULT_MAX_LIST_BYTES,
        max_manifest_bytes: int = 65536,
        clock: Callable[[], float] = time.monotonic,
        embedder_id: str = DLIB_EMBEDDER.id,
    ) -> None:
        self._prefix = f"{prefix}/lists/"
        self._embedder_id = embedder_id  # the box's: a list of faces made by another cannot be matched
        self._key = centre_key
        self._data_dir = data_dir
        self._lists = set(lists)
        self._on_applied = on_applied
        self._timeout_s = timeout_s
        self._max_list_bytes = max_list_bytes
        self._max_chunks = min(MAX_CHUNKS, max(1, math.ceil(max_list_bytes / CHUNK_BYTES)))
        self._max_manifest_bytes = max_manifest_bytes
        self._clock = clock
        self._pending: dict[tuple[str, str, int], _Pending] = {}
        self._early: dict[tuple[str, str, int, int], _EarlyChunk] = {}
        self._early_bytes = 0
        self._applying = threading.Lock()
        self.rejected: Counter[str] = Counter()

    def attach(self, link: Link) -> None:
        """Take every message under `<prefix>/lists/` from `link`, and give up on stale bundles as time passes."""
        link.route(self._prefix + "#", self.on_message)
        link.every(1.0, self.tick)

    def on_message(self, topic: str, payload: bytes) -> None:
        """Called for every message under `<prefix>/lists/` (on the link's dispatch thread)."""
        self.tick()
        parts = topic[len(self._prefix) :].split("/")
        if len(parts) == 3 and parts[2] == "manifest":
            self._on_manifest(parts[0], payload)
        elif len(parts) == 4 and parts[1] in ("full", "delta") and NUMBER.fullmatch(parts[2]) and \
                NUMBER.fullmatch(parts[3]) and 1 <= int(parts[2]) <= MAX_VERSION:  # fmt: skip
            self._on_chunk((parts[0], parts[1], int(parts[2])), int(parts[3]), payload)
        else:
            self._reject("bad_topic", f"unexpected list topic {topic[:200]}")

    def _on_manifest(self, name: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained manifest
        if self._key is None:
            return self._reject("no_key", f"list {name}: no centre public key configured, cannot verify")
        try:
            check_json_bounds(payload, self._max_manifest_bytes, MAX_MANIFEST_DEPTH)
            manifest = Manifest.model_validate(open_sealed(payload, self._key))
        except JsonRefused as e:
            return self._reject(e.reason, f"list {name} manifest: {e}")
        except BadSignature as e:
            return self._reject("bad_signature", f"list {name}: {e}")
        except ValidationError as e:
            return self._reject("invalid_manifest", f"list {name}: {e.errors()[0]['msg']}")
        if manifest.list != name or name not in self._lists:
            return self._reject(
                "unknown_list", f"list {manifest.list!r} on topic of {name!r} (configured: {self._lists})"
            )
        key = (name, manifest.kind, manifest.version)
        if manifest.size > self._max_list_bytes or len(manifest.chunks) > self._max_chunks:
            self._drop_early(key)
            return self._reject("too_large", f"list {name} v{manifest.version}: {manifest.size} bytes in "
                                f"{len(manifest.chunks)} chunks; link.max_list_mb allows {self._max_list_bytes} bytes "
                                f"in {self._max_chunks} chunks")  # fmt: skip
        current = self._current_version(name)
        if current is not None and manifest.version <= current:
            log.debug("list %s v%d: already at v%d", name, manifest.version, current)
            self._drop_early(key)
            return None
        if manifest.kind == "delta" and manifest.base_version != current:
            self._drop_early(key)
            return self._reject(
                "out_of_order", f"list {name}: delta v{manifest.base_version}→v{manifest.version} does not apply to "
                f"{'no version' if current is None else f'v{current}'}; keeping what is in force",
            )  # fmt: skip
        pending = self._pending.setdefault(key, _Pending(manifest, self._clock()))
        for early_key in [k for k in self._early if k[:3] == key]:
            self._add_chunk(pending, early_key[3], self._pop_early(early_key))
        self._complete(key)

    def _on_chunk(self, key: tuple[str, str, int], index: int, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained chunk
        if len(payload) > CHUNK_BYTES:
            return self._reject("oversized", f"list chunk {key}/{index}: {len(payload)} bytes")
        if key[0] not in self._lists:
            return None  # a list this box does not use (its manifest is counted as `unknown_list`)
        if index >= self._max_chunks:
            return self._reject("bad_chunk", f"list chunk {key}/{index}: past the last chunk a list may have")
        pending = self._pending.get(key)
        if pending is None:
            self._hold_early((*key, index), payload)
            return None
        self._add_chunk(pending, index, payload)
        self._complete(key)

    def _hold_early(self, key: tuple[str, str, int, int], payload: bytes) -> None:
        """Keep a chunk until its manifest comes, within `max_list_bytes` for all such chunks."""
        self._pop_early(key)  # a chunk sent again replaces the one held
        if self._early_bytes + len(payload) > self._max_list_bytes:
            return self._reject("early_overflow", f"list chunk {key}: {self._early_bytes} bytes of chunks already "
                                "wait for their manifest")  # fmt: skip
        self._early[key] = _EarlyChunk(payload, self._clock())
        self._early_bytes += len(payload)
        return None

    def _pop_early(self, key: tuple[str, str, int, int]) -> bytes:
        chunk = self._early.pop(key, None)
        if chunk is None:
            return b""
        self._early_bytes -= len(chunk.payload)
        return chunk.payload

    def _drop_early(self, key: tuple[str, str, int]) -> None:
        """Chunks of a bundle that will not be collected (refused or already in force)."""
        for early_key in [k for k in self._early if k[:3] == key]:
            self._pop_early(early_key)

    def _add_chunk(self, pending: _Pending, index: int, payload: bytes) -> None:
        manifest = pending.manifest
        if index >= len(manifest.chunks) or sha256(payload) != manifest.chunks[index]:
            self._reject("bad_chunk", f"list {manifest.list} v{manifest.version}: chunk {index} does not match")
            return
        pending.chunks[index] = payload

    def _complete(self, key: tuple[str, str, int]) -> None:
        pending = self._pending[key]
        if len(pending.chunks) < len(pending.manifest.chunks):
            return
        del self._pending[key]
        blob = b"".join(pending.chunks[i] for i in range(len(pending.manifest.chunks)))
        threading.Thread(target=self._apply, args=(pending.manifest, blob), name="list-apply", daemon=True).start()

    def _apply(self, manifest: Manifest, blob: bytes) -> None:
        with self._applying:  # one at a time, in arrival order
            try:
                if len(blob) != manifest.size:
                    raise BundleError(f"data is {len(blob)} bytes, manifest says {manifest.size}")
                data = decode(blob, manifest.kind)
                if manifest.kind == "full" and len(data.entries) != manifest.entries:
                    raise BundleError(f"{len(data.entries)} entries, manifest says {manifest.entries}")
                if data.embedder is not None and data.embedder.id != self._embedder_id:
                    raise EmbedderMismatch(
                        f"its faces were embedded by {data.embedder.id} ({data.embedder.dim}-d), this box embeds "
                        f"with {self._embedder_id}: build the list on a centre whose recognition.embedder (and "
                        "model file) is the box's"
                    )
                store = ListStore(self._data_dir)
                try:
                    store.apply_update(manifest.list, manifest.version, manifest.base_version, data.entries,
                                       data.matrix, data.remove, data.embedder)  # fmt: skip
                finally:
                    store.close()
            except EmbedderMismatch as e:
                self._reject("embedder_mismatch", f"list {manifest.list} v{manifest.version}: {e}; keeping what is "
                             "in force", logging.ERROR)  # fmt: skip
                return
            except (BundleError, VersionConflict) as e:
                self._reject("invalid_data" if isinstance(e, BundleError) else "out_of_order",
                             f"list {manifest.list} v{manifest.version}: {e}")  # fmt: skip
                return
            except Exception:
                log.exception("list %s v%d: could not be applied", manifest.list, manifest.version)
                self.rejected["apply_failed"] += 1
                return
        log.info("list %s: v%d applied (%s, %d entries)", manifest.list, manifest.version, manifest.kind,
                 len(data.entries))  # fmt: skip
        self._on_applied(manifest.list, manifest.version, len(data.entries))

    def _current_version(self, name: str) -> int | None:
        store = ListStore(self._data_dir)
        try:
            return store.versions().get(name)
        finally:
            store.close()

    @property
    def early_chunks(self) -> tuple[int, int]:
        """Chunks held while waiting for their manifest, and their bytes."""
        return len(self._early), self._early_bytes

    def tick(self) -> None:
        """Give up on bundles whose chunks did not all arrive in time, and on chunks no manifest
        claimed in that time (called periodically)."""
        now = self._clock()
        orphans = [k for k, chunk in self._early.items() if now - chunk.arrived > self._timeout_s]
        for orphan in orphans:
            self._pop_early(orphan)
        if orphans:
            self.rejected["orphan_chunk"] += len(orphans)
            log.warning("list update: %d chunk(s) dropped, no manifest claimed them within %.0f s", len(orphans),
                        self._timeout_s)  # fmt: skip
        for key, pending in list(self._pending.items()):
            if now - pending.started > self._timeout_s:
                del self._pending[key]
                got, want = len(pending.chunks), len(pending.manifest.chunks)
                self._reject("truncated", f"list {key[0]} v{key[2]}: {got} of {want} chunks in "
                             f"{self._timeout_s:.0f} s; keeping what is in force")  # fmt: skip

    def _reject(self, reason: str, detail: str, level: int = logging.WARNING) -> None:
        self.rejected[reason] += 1
        log.log(level, "list update rejected (%s): %s", reason, detail)
