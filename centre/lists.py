"""Centre side of list sync: build a list bundle from photos, publish it (full or as a delta).

    gatebox centre lists build --list missing_elders --version 3 --photos DIR [--meta META.csv] --out v3.gbl
    gatebox centre lists publish v3.gbl --key centre.pem [--delta-from v2.gbl]

DIR holds one folder per subject (the folder name is the subject id) with that person's photos,
embedded with the configured `recognition.embedder` (the boxes' own photo embedder:
`centre.embedding`), whose id the bundle carries: a box running another embedder refuses the list.
META.csv (optional): subject_id,name,category,priority,expires_at (ISO 8601, empty = never).
A bundle file is one JSON header line `{"list", "version"}` followed by the data blob.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np

from centre.config import CentreConfig
from centre.embedding import embed_photos
from edge.protocol.bundle import ListEntry, Manifest, decode, encode, sha256, split
from edge.protocol.embedding import EmbedderSpec
from edge.protocol.errors import InputError
from edge.protocol.mqtt import BrokerConfig, Inbox, session
from edge.protocol.plate_grammar import normalise, plate_kind
from edge.protocol.signing import load_private_key, seal
from edge.protocol.wire import MAX_SAFE_INT

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def write_bundle(path: Path, list_name: str, version: int, blob: bytes) -> None:
    path.write_bytes(json.dumps({"list": list_name, "version": version}).encode() + b"\n" + blob)


def read_bundle(path: Path) -> tuple[str, int, bytes]:
    try:
        header, blob = path.read_bytes().split(b"\n", 1)
        meta = json.loads(header)
        return str(meta["list"]), int(meta["version"]), blob
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path} is not a list bundle: {e}") from None


def _read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV's rows by header; InputError (naming the file) for anything that is not UTF-8 CSV text."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}); save the CSV as UTF-8") from None
    except csv.Error as e:
        raise InputError(f"{path}: not a CSV file: {e}") from None


class SubjectMeta(TypedDict, total=False):
    """What META.csv says of a subject: the ListEntry fields it may set (absent: the entry's default)."""

    name: str | None
    category: str | None
    priority: int
    expires_at: datetime | None


def _metadata(meta_csv: Path | None) -> dict[str, SubjectMeta]:
    if meta_csv is None:
        return {}
    rows = _read_csv(meta_csv)
    if rows and "subject_id" not in rows[0]:
        raise InputError(f"{meta_csv}: no subject_id column (subject_id,name,category,priority,expires_at)")
    out: dict[str, SubjectMeta] = {}
    for number, row in enumerate(rows, 2):
        expires = (row.get("expires_at") or "").strip()
        try:
            out[row["subject_id"]] = {
                "name": row.get("name") or None,
                "category": row.get("category") or None,
                "priority": int(row.get("priority") or 0),
                "expires_at": datetime.fromisoformat(expires) if expires else None,
            }
        except ValueError as e:
            raise InputError(f"{meta_csv}:{number}: {e}") from None
    return out


def build_plates(list_name: str, version: int, plates_csv: Path, out: Path) -> int:
    """A plate list from a CSV (`plate[,subject_id,name,category,priority,expires_at]`); returns entries."""
    rows = _read_csv(plates_csv)
    entries = []
    for number, row in enumerate(rows, 2):
        plate = normalise(row.get("plate") or "")  # `粤b-12345` -> `粤B12345`: what the reader produces
        if plate_kind(plate) is None:  # what the reader can never produce would never match
            raise InputError(f"{plates_csv}:{number}: {plate!r} is not a mainland plate number (e.g. 粤B12345)")
        expires = (row.get("expires_at") or "").strip()
        try:
            entries.append(ListEntry(
                subject_id=row.get("subject_id") or plate, plate=plate, name=row.get("name") or None,
                category=row.get("category") or row.get("kind") or None, priority=int(row.get("priority") or 0),
                expires_at=datetime.fromisoformat(expires) if expires else None,
            ))  # fmt: skip
        except ValueError as e:
            raise InputError(f"{plates_csv}:{number}: {e}") from None
    if not entries:
        raise InputError(f"{plates_csv}: no plates")
    write_bundle(out, list_name, version, encode(entries, np.empty((0, 0), np.float32)))  # no faces: any embedder
    return len(entries)


def check_source(config: CentreConfig, list_name: str, *, photos: bool, plates: bool) -> None:
    """InputError unless the list is configured and given what its kind is built from: a `plates` list
    a plate CSV, any other photos (whatever its name)."""
    kind = config.lists.get(list_name)
    if kind is None:
        raise InputError(f"unknown list '{list_name}'; configured lists: {', '.join(config.lists)}")
    if kind == "plates" and (photos or not plates):
        raise InputError(f"{list_name} is a `plates` list: give --plates CSV (the console: a plate CSV)")
    if kind != "plates" and (plates or not photos):
        raise InputError(f"{list_name} is a face list (`{kind}`): give --photos DIR (the console: a photo zip)")


def build(
    config: CentreConfig,
    list_name: str,
    version: int,
    photos: Path | None,
    meta_csv: Path | None,
    out: Path,
    plates_csv: Path | None = None,
) -> int:
    """Embed every subject's photos (for a face list) or read a plate CSV (for a `plates` list) and
    write a full bundle; returns entries."""
    if not 1 <= version <= MAX_SAFE_INT:  # a box takes only a version above the one it holds; none is below 1
        raise InputError(f"--version {version}: list versions are whole numbers from 1 (up to 2^53); give the "
                         "next version after the one published last")  # fmt: skip
    check_source(config, list_name, photos=photos is not None, plates=plates_csv is not None)
    if plates_csv is not None:
        return build_plates(list_name, version, plates_csv, out)
    assert photos is not None
    folders = sorted(p for p in photos.iterdir() if p.is_dir()) if photos.is_dir() else []
    if not folders:
        raise InputError(f"{photos}: expected one folder of photos per subject")
    meta = _metadata(meta_csv)
    entries, photos_in_order = [], []
    for folder in folders:
        pictures = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if not pictures:
            raise InputError(f"{folder}: no photos")
        try:
            entries.append(ListEntry(subject_id=folder.name, embeddings=len(pictures), **meta.get(folder.name, {})))
        except ValueError as e:
            raise InputError(f"{folder}: {e}") from None
        photos_in_order += pictures
    embedder, rows = embed_photos(config.recognition, config.models_dir, photos_in_order)
    write_bundle(out, list_name, version, encode(entries, rows, embedder=embedder))
    return len(entries)


def by_subject(blob: bytes) -> tuple[EmbedderSpec | None, dict[str, tuple[ListEntry, bytes]]]:
    """The embedder of a full list's faces (None: it has none) and its entries by subject id, each
    with its embedding rows (raw float32 bytes)."""
    data, offset = decode(blob, "full"), 0
    out: dict[str, tuple[ListEntry, bytes]] = {}
    for entry in data.entries:
        out[entry.subject_id] = (entry, data.matrix[offset : offset + entry.embeddings].tobytes())
        offset += entry.embeddings
    return data.embedder, out


def encode_subjects(
    subjects: list[tuple[ListEntry, bytes]], embedder: EmbedderSpec | None, remove: list[str] | None = None
) -> bytes:
    dim = embedder.dim if embedder else 0
    rows = [np.frombuffer(raw, np.float32).reshape(-1, dim) for _, raw in subjects if raw]
    matrix = np.concatenate(rows) if rows else np.empty((0, dim), np.float32)
    if embedder is None:
        return encode([entry for entry, _ in subjects], matrix, remove=remove)
    return encode([entry for entry, _ in subjects], matrix, remove=remove, embedder=embedder)


def _one_embedder(old: EmbedderSpec | None, new: EmbedderSpec | None, what: str) -> EmbedderSpec | None:
    """The embedder of two lists' faces together; InputError when they were made by two."""
    if old is not None and new is not None and old != new:
        raise InputError(
            f"{what}: the published list's faces were embedded by {old.id}, the new ones by {new.id}; faces of two "
            "embedders cannot share a list: publish the new version as a whole list, built with one embedder"
        )
    return new or old


def delta_blob(old: bytes, new: bytes) -> bytes:
    """The delta that turns list data `old` into `new` (entries added or changed; subjects removed)."""
    (old_embedder, old_map), (new_embedder, new_map) = by_subject(old), by_subject(new)
    embedder = _one_embedder(old_embedder, new_embedder, "a delta")
    changed = [new_map[s] for s in new_map if old_map.get(s) != new_map[s]]
    return encode_subjects(changed, embedder, remove=[s for s in old_map if s not in new_map])


def merged_blob(base: bytes, update: bytes) -> bytes:
    """`base` with the subjects of `update` added (or replaced, when already listed)."""
    (base_embedder, base_map), (update_embedder, update_map) = by_subject(base), by_subject(update)
    embedder = _one_embedder(base_embedder, update_embedder, "adding to a list")
    return encode_subjects(list({**base_map, **update_map}.values()), embedder)


def without_subjects(base: bytes, subject_ids: set[str]) -> tuple[bytes, list[str]]:
    """`base` less `subject_ids`; also returns which of them were not listed."""
    embedder, subjects = by_subject(base)
    missing = sorted(subject_ids - subjects.keys())
    return encode_subjects([v for s, v in subjects.items() if s not in subject_ids], embedder), missing


def publish(broker: BrokerConfig, key_path: Path, bundle: Path, delta_from: Path | None = None) -> Manifest:
    """Publish a bundle (retained, signed manifest + chunks); clears the chunks of the one it replaces."""
    list_name, version, blob = read_bundle(bundle)
    base_version = None
    if delta_from is not None:
        base_name, base_version, base_blob = read_bundle(delta_from)
        if base_name != list_name or base_version >= version:
            raise InputError(f"--delta-from must be an older version of {list_name}")
        entries = len(decode(blob, "full").entries)
        blob = delta_blob(base_blob, blob)
    else:
        entries = len(decode(blob, "full").entries)
    chunks = split(blob)
    kind: Literal["full", "delta"] = "delta" if delta_from else "full"
    manifest = Manifest(list=list_name, kind=kind, version=version, base_version=base_version, entries=entries,
                        size=len(blob), chunks=[sha256(c) for c in chunks],
                        created_at=datetime.now(timezone.utc))  # fmt: skip
    key = load_private_key(key_path)
    prefix = broker.topic_prefix
    manifest_topic = f"{prefix}/lists/{list_name}/{kind}/manifest"
    with session(broker, [manifest_topic]) as (client, inbox):
        previous = _retained(inbox, timeout=1.0)
        for i, chunk in enumerate(chunks):  # chunks first: a box that sees the manifest finds them all there
            client.publish(manifest.chunk_topic(prefix, i), chunk, qos=1, retain=True).wait_for_publish(30)
        client.publish(manifest_topic, seal(manifest.model_dump(mode="json", by_alias=True), key), qos=1,
                       retain=True).wait_for_publish(30)  # fmt: skip
        if previous and previous.version != version:
            for i in range(len(previous.chunks)):
                client.publish(previous.chunk_topic(prefix, i), b"", qos=1, retain=True).wait_for_publish(30)
    return manifest


def _retained(inbox: Inbox, timeout: float) -> Manifest | None:
    """The manifest currently retained on the topic, read without verifying (we signed it)."""
    try:
        message = inbox.get(timeout=timeout)
        return Manifest.model_validate_json(json.loads(message.payload)["body"])
    except Exception:
        return None
