"""Photo zips uploaded to the console, unpacked without trusting them.

The archive's own paths are never used: a photo lands at OUT/SUBJECT/PHOTO, from the last two parts
of its name, and any name that is absolute, starts with a drive or climbs (`..`) refuses the whole
upload. Before anything is written the central directory is checked: how many members there are,
how large each photo says it is, how much it says it inflates (a zip bomb's zeros shrink
1,000-fold; photos barely shrink at all) and how much all of them come to. Then each photo is read
in pieces and counted, so a member whose directory understates its size stops there (and fails its
CRC) rather than unpacking what it did not declare."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from centre.lists import PHOTO_SUFFIXES
from edge.protocol.errors import InputError

MAX_PHOTO_BYTES = 20 * 2**20
READ_BYTES = 2**20  # a photo is unpacked this much at a time
DIRECTORY_ENTRY = b"PK\x01\x02"  # the signature every central directory entry starts with
SUPPORTED = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}  # what any zip tool writes by default
DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipLimits:
    total_bytes: int  # all the photos together, unpacked
    member_bytes: int = MAX_PHOTO_BYTES  # one photo, unpacked
    members: int = 5000  # entries in the archive, photos or not
    ratio: int = 100  # one photo's unpacked size over its packed size


def unzip_photos(data: bytes, out: Path, limits: ZipLimits) -> Path:
    """Unpack the SUBJECT/PHOTO members of zip `data` into `out`; InputError for anything refused."""
    # zipfile reads the whole central directory into objects when it opens an archive: a 50 MB zip
    # of empty names would be a million of them. Each entry starts with its signature, so counting
    # signatures bounds the entries before zipfile parses any.
    if data.count(DIRECTORY_ENTRY) > limits.members:
        raise InputError(f"the zip has more than {limits.members} members")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise InputError(f"photos must be a zip archive: {e}") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.members:
            raise InputError(f"the zip has more than {limits.members} members")
        photos = [(m, where) for m in members if (where := _photo_path(m)) is not None]
        _check_directory([m for m, _ in photos], limits)
        for member, (subject, photo) in photos:
            _extract(archive, member, out / subject / photo, limits.member_bytes)
    if not photos:
        raise InputError("the zip holds no SUBJECT/PHOTO.jpg files (one folder of photos per subject)")
    return out


def _photo_path(member: zipfile.ZipInfo) -> tuple[str, str] | None:
    """(subject, photo name) of a photo member; None for anything else (folders, notes, `._` files)."""
    name = member.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or (parts and DRIVE.match(parts[0])):
        raise InputError(f"{member.filename!r}: unsafe path in the zip (absolute, or climbing out with '..')")
    if member.is_dir() or len(parts) < 2 or PurePosixPath(parts[-1]).suffix.lower() not in PHOTO_SUFFIXES:
        return None
    subject, photo = parts[-2], parts[-1]
    if subject.startswith(".") or photo.startswith("."):  # macOS `._` companions, hidden folders
        return None
    return subject, photo


def _check_directory(photos: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """What the central directory says, checked before a byte is unpacked."""
    total = 0
    for member in photos:
        if member.flag_bits & 0x1:
            raise InputError(f"{member.filename}: encrypted; zip the photos without a password")
        if member.compress_type not in SUPPORTED:
            raise InputError(f"{member.filename}: compressed with method {member.compress_type}; use plain zip")
        if member.file_size > limits.member_bytes:
            raise InputError(f"{member.filename}: larger than {limits.member_bytes / 2**20:g} MB")
        if member.file_size > limits.ratio * max(member.compress_size, 1):
            ratio = member.file_size / max(member.compress_size, 1)
            raise InputError(f"{member.filename}: inflates {ratio:.0f}-fold, over the compression ratio of "
                             f"{limits.ratio} a photo can have")  # fmt: skip
        total += member.file_size
    if total > limits.total_bytes:
        raise InputError(f"the zip's photos come to {total / 2**20:.1f} MB unpacked, more than "
                         f"{limits.total_bytes / 2**20:g} MB")  # fmt: skip


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, cap: int) -> None:
    """Unpack one photo a piece at a time, never past its declared size nor `cap`."""
    allowed = min(member.file_size, cap)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with archive.open(member) as source, target.open("wb") as sink:
            while piece := source.read(READ_BYTES):
                written += len(piece)
                if written > allowed:
                    raise InputError(f"{member.filename}: unpacks to more than the zip's directory says")
                sink.write(piece)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise InputError(f"{member.filename}: damaged in the zip ({e})") from None
