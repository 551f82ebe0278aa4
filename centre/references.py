"""The reference photos the console shows beside an alert's snapshot: when the centre builds a face
list (the console's upload, or `gatebox centre lists build --db`), it keeps one small JPEG of each
subject's first enrolled photo (by file name) with the subject's name, category and priority.

Only the centre keeps them (boxes get embeddings, never photos), and a subject taken off a list
loses its photo with the next version published (`CentreStore.keep_subjects`)."""

from __future__ import annotations

import io
from pathlib import Path

from centre.store import SubjectRecord
from edge.protocol.bundle import ListEntry

REFERENCE_PX = 320  # the longer side: enough to compare a face at twice the card's size
REFERENCE_QUALITY = 85


def thumbnail(photo: Path, max_px: int = REFERENCE_PX) -> bytes | None:
    """`photo` as a JPEG no larger than `max_px` on its longer side, upright; None if it is no image."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # only when a list is built: the console starts without

    try:
        with Image.open(photo) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    upright.thumbnail((max_px, max_px))
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=REFERENCE_QUALITY)
    return out.getvalue()


def first_photo(folder: Path, suffixes: set[str]) -> Path | None:
    pictures = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes) if folder.is_dir() else []
    return pictures[0] if pictures else None


def subject_records(entries: list[ListEntry], photos: Path | None, suffixes: set[str]) -> list[SubjectRecord]:
    """What the centre keeps of each entry of a list it built: its details, and for a face list the
    first photo of the subject's folder under `photos`."""
    records = []
    for entry in entries:
        picture = first_photo(photos / entry.subject_id, suffixes) if photos is not None else None
        records.append(
            SubjectRecord(
                subject_id=entry.subject_id, name=entry.name, category=entry.category, priority=entry.priority,
                reference=thumbnail(picture) if picture is not None else None,
            )
        )  # fmt: skip
    return records
