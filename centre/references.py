"""The reference photos the console shows beside an alert's snapshot: when the centre builds a face
list (the console's upload, or `gatebox centre lists build --db`), it keeps one small JPEG of each
subject's first enrolled photo (by file name), framed on the face, with the subject's name, category
and priority.

Only the centre keeps them (boxes get embeddings, never photos), and a subject taken off a list
loses its photo with the next version published (`CentreStore.keep_subjects`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from centre.store import SubjectRecord
from edge.protocol.bundle import ListEntry

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

REFERENCE_PX = 320  # the longer side: enough to compare a face at twice the card's size
REFERENCE_QUALITY = 85
DETECT_PX = 800  # the photo's longer side when its face is looked for
FACE_FRAME = 2.2  # the reference's side, in face widths: the face with hair, chin and some shoulder


def thumbnail(photo: Path, max_px: int = REFERENCE_PX) -> bytes | None:
    """`photo` framed on its face (the whole photo when none is found) as a JPEG no larger than `max_px`
    on its longer side, upright; None if it is no image."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # only when a list is built: the console starts without

    try:
        with Image.open(photo) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    if face := _face_frame(upright):
        upright = upright.crop(face)
    upright.thumbnail((max_px, max_px))
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=REFERENCE_QUALITY)
    return out.getvalue()


def _face_frame(image: PILImage) -> tuple[int, int, int, int] | None:
    """A square round the largest face in `image` (FACE_FRAME times its size, inside the photo), so the
    reference shows the face as large as the alert's snapshot does. Found with OpenCV's bundled frontal
    face cascade: it only frames the photo; the box's own detector and embedder decide every match."""
    import cv2  # only when a list is built
    import numpy as np

    scale = min(1.0, DETECT_PX / max(image.size))
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    gray = cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    if len(faces) == 0:
        return None
    x, y, w, h = (int(v / scale) for v in max(faces, key=lambda f: int(f[2]) * int(f[3])))
    side = min(int(max(w, h) * FACE_FRAME), image.width, image.height)
    left = min(max(0, x + w // 2 - side // 2), image.width - side)
    top = min(max(0, y + h // 2 - side // 2), image.height - side)
    return left, top, left + side, top + side


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
