"""`atomic_write`: write-then-rename, so a process killed mid-write leaves either the old file or
the new one, never half of either. Used for every state file (a node's disk table, update.conf)
and the dashboard's saved filters."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(
    path: Path,
    data: bytes,
    fsync: bool = True,
    *,
    mode: int | None = None,
    owner: tuple[int, int] | None = None,
) -> None:
    """Write `data` to a temporary file beside `path`, flush it, and rename it over `path`. The
    file gets `mode` and `owner` (uid, gid) when given, else mkstemp's 0600 and the caller's ids."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if owner is not None:
                made = os.fstat(fd)
                if (made.st_uid, made.st_gid) != owner:
                    os.fchown(fd, *owner)
            if mode is not None:
                os.fchmod(fd, mode)  # after fchown, which may clear set-id bits
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
