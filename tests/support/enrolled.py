"""Enrolled data directories for the slow tier: each set of faces is enrolled once per session through the
CLI (as an operator enrols), then every test that needs it gets its own copy, so tests stay isolated
without paying a `python -m edge enroll` start and a dlib pass per face per test."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from tests.support import crowd

# Subjects enrolled from a real photo under the test data's faces/ (the crowd clip's subjects are
# cropped out of the clip instead: `crowd.TRACKS`).
FACE_PHOTOS = {"kit": "kit_harington/kit1.jpg"}


class EnrolledData:
    """Templates keyed by {subject: list}; `copy` hands out a fresh copy of one."""

    def __init__(self, work: Path, crowd_clip: Path, faces_dir: Path) -> None:
        self._work = work
        self._crowd_clip = crowd_clip
        self._faces_dir = faces_dir
        self._templates: dict[tuple[tuple[str, str], ...], Path] = {}

    def copy(self, to: Path, subjects: Mapping[str, str] = crowd.ENROL_LISTS) -> Path:
        """A new data directory at `to` (which must not exist) with each subject enrolled on its list;
        by default the crowd clip's boy on the watchlist and the woman on missing_elders."""
        key = tuple(sorted(subjects.items()))
        if key not in self._templates:
            self._templates[key] = self._enrol(key)
        shutil.copytree(self._templates[key], to)  # copy2: the files keep their private modes
        return to

    def _enrol(self, subjects: tuple[tuple[str, str], ...]) -> Path:
        from tests.conftest import run_cli  # here, not at import: tests.conftest imports this module

        data = self._work / f"template-{len(self._templates)}"
        for subject, list_name in subjects:
            result = run_cli("--data-dir", data, "enroll", "--list", list_name, "--subject", subject,
                             self._photo(subject))  # fmt: skip
            assert result.returncode == 0, result.stderr
        return data

    def _photo(self, subject: str) -> Path:
        if subject in FACE_PHOTOS:
            return self._faces_dir / FACE_PHOTOS[subject]
        photo = self._work / "photos" / f"{subject}.png"
        if not photo.exists():
            photo.parent.mkdir(exist_ok=True)
            crowd.write_face_crop(self._crowd_clip, subject, photo)
        return photo
