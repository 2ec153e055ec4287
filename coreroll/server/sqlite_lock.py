"""One server per SQLite database: an exclusive lock file next to the database file.

A SQLite server keeps its groups, channels, releases and instances in memory and is the
database's only writer; a second server on the same file would decide on state it never sees
(a pause ignored, releases unseen, grants over the limit). So ``SqliteLock.take(db_path)`` takes
``flock(LOCK_EX | LOCK_NB)`` on ``<db>.lock`` and writes our pid into it; when another process
holds it, ``DatabaseInUse`` names that pid and the lock file. The kernel releases the lock when
the process ends in any way (kill -9 included), so a stale lock file never blocks a restart.
Several servers on one database are supported on PostgreSQL only.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

PID_MAX_BYTES = 32


class DatabaseInUse(RuntimeError):
    """Another process serves this SQLite database."""


class SqliteLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, db_path: Path) -> SqliteLock:
        path = db_path.with_name(db_path.name + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            written = os.pread(fd, PID_MAX_BYTES, 0).decode("ascii", "replace").strip()
            os.close(fd)
            holder = f"pid {written}" if written.isdigit() else "a process that has not written its pid yet"
            raise DatabaseInUse(
                f"{db_path} is in use by another coreroll server ({holder}; lock file {path}). "
                "One server per SQLite database: stop the other one, or run several servers "
                "on one PostgreSQL database (--db postgresql://...)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Closing the file releases the lock; the file stays (removing it would race a new taker)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
