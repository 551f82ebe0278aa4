"""Files that hold faces or personal data (databases, snapshots, the events journal) are private to
the service user: created 0600 (folders 0700) whatever the umask the process inherited, and an
existing file an earlier version left readable is tightened when opened."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# What the box and the centre write holds faces, embeddings and events: both programs run under this
# umask whatever they inherited (a shell's 022 would make them world-readable). Databases, snapshots
# and the events journal are also made 0600 where they are opened; this covers everything else
# (list bundles, keys, saved snapshots, --events and --stats files).
PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) 0700; an existing folder keeps its mode (the installer
    sets DATA_DIR 0750 on purpose)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return path


def make_private(*paths: Path) -> None:
    """chmod 0600 those of `paths` that exist and are regular files. Another user's file (root ran a
    command once) is left as it is: whether it can be used is for the caller to find out. A device or a
    pipe (`--events /dev/null`) is never ours to change: run as root, a chmod would lock everyone else
    out of /dev/null."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if stat.S_ISREG(os.stat(path).st_mode):
                os.chmod(path, PRIVATE_FILE_MODE)


def open_private(path: Path, flags: int) -> int:
    """`os.open` creating the file 0600; an existing file is made 0600 too."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE_MODE)
    make_private(path)
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write `path` whole, 0600 from its first byte, fsynced, replacing it atomically: a crash leaves
    the old file or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
