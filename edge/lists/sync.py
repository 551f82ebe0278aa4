"""Box side of list sync: collect a bundle's manifest and chunks from MQTT, verify, apply.

Nothing is applied until the whole bundle is in and verified: the signature over the manifest,
each chunk's sha256, the decoded data, and version continuity (a delta applies only on top of the
version the box holds) and the embedder that made its faces (the one the box runs). Until then,
and whenever a bundle is refused, the lists in force stay.
Applying runs in its own thread, so a 100,000-entry list never holds up the link.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.lists.bundle import CHUNK_BYTES, BundleError, Manifest, decode, sha256
from edge.recognition.embedder import DLIB_EMBEDDER, EmbedderMismatch
from edge.security.signing import BadSignature, open_sealed
from edge.store.lists import ListStore, VersionConflict

log = logging.getLogger(__name__)

Applied = Callable[[str, int, int], None]  # list name, version, entries
MAX_EARLY_CHUNKS = 4096  # chunks that arrive before their manifest (retained delivery has no order)


@dataclass
class _Pending:
    manifest: Manifest
    started: float
    chunks: dict[int, bytes] = field(default_factory=dict)


class ListSync:
    def __init__(
        self,
        prefix: str,
        centre_key: Ed25519PublicKey | None,
        data_dir: Path,
        lists: Collection[str],
        on_applied: Applied,
        timeout_s: float = 120.0,
        embedder_id: str = DLIB_EMBEDDER.id,
    ) -> None:
        self._prefix = f"{prefix}/lists/"
        self._embedder_id = embedder_id  # the box's: a list of faces made by another cannot be matched
        self._key = centre_key
        self._data_dir = data_dir
        self._lists = set(lists)
        self._on_applied = on_applied
        self._timeout_s = timeout_s
        self._pending: dict[tuple[str, str, int], _Pending] = {}
        self._early: dict[tuple[str, str, int, int], bytes] = {}
        self._applying = threading.Lock()
        self.rejected: Counter[str] = Counter()

    def handles(self, topic: str) -> bool:
        return topic.startswith(self._prefix)

    def subscription(self) -> str:
        return self._prefix + "#"

    def on_message(self, topic: str, payload: bytes) -> None:
        """Called for every message under `<prefix>/lists/` (from the link thread)."""
        self.tick()
        parts = topic[len(self._prefix) :].split("/")
        if len(parts) == 3 and parts[2] == "manifest":
            self._on_manifest(parts[0], payload)
        elif len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit() and parts[1] in ("full", "delta"):
            self._on_chunk((parts[0], parts[1], int(parts[2])), int(parts[3]), payload)
        else:
            self._reject("bad_topic", f"unexpected list topic {topic}")

    def _on_manifest(self, name: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained manifest
        if self._key is None:
            return self._reject("no_key", f"list {name}: no centre public key configured, cannot verify")
        try:
            manifest = Manifest.model_validate(open_sealed(payload, self._key))
        except BadSignature as e:
            return self._reject("bad_signature", f"list {name}: {e}")
        except ValidationError as e:
            return self._reject("invalid_manifest", f"list {name}: {e.errors()[0]['msg']}")
        if manifest.list != name or name not in self._lists:
            return self._reject(
                "unknown_list", f"list {manifest.list!r} on topic of {name!r} (configured: {self._lists})"
            )
        current = self._current_version(name)
        if current is not None and manifest.version <= current:
            log.debug("list %s v%d: already at v%d", name, manifest.version, current)
            return None
        if manifest.kind == "delta" and manifest.base_version != current:
            return self._reject(
                "out_of_order", f"list {name}: delta v{manifest.base_version}→v{manifest.version} does not apply to "
                f"{'no version' if current is None else f'v{current}'}; keeping what is in force",
            )  # fmt: skip
        key = (name, manifest.kind, manifest.version)
        pending = self._pending.setdefault(key, _Pending(manifest, time.monotonic()))
        for early_key in [k for k in self._early if k[:3] == key]:
            self._add_chunk(pending, early_key[3], self._early.pop(early_key))
        self._complete(key)

    def _on_chunk(self, key: tuple[str, str, int], index: int, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained chunk
        if len(payload) > CHUNK_BYTES:
            return self._reject("oversized", f"list chunk {key}/{index}: {len(payload)} bytes")
        pending = self._pending.get(key)
        if pending is None:
            if len(self._early) < MAX_EARLY_CHUNKS:
                self._early[(*key, index)] = payload
            return None
        self._add_chunk(pending, index, payload)
        self._complete(key)

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

    def tick(self) -> None:
        """Give up on bundles whose chunks did not all arrive in time (called periodically)."""
        now = time.monotonic()
        for key, pending in list(self._pending.items()):
            if now - pending.started > self._timeout_s:
                del self._pending[key]
                got, want = len(pending.chunks), len(pending.manifest.chunks)
                self._reject("truncated", f"list {key[0]} v{key[2]}: {got} of {want} chunks in "
                             f"{self._timeout_s:.0f} s; keeping what is in force")  # fmt: skip

    def _reject(self, reason: str, detail: str, level: int = logging.WARNING) -> None:
        self.rejected[reason] += 1
        log.log(level, "list update rejected (%s): %s", reason, detail)
