"""The host's files under `--root`, reached as the host itself reaches them and never beyond it.

`coreroll report` reads a host mounted at a root directory (`/host` in its container). A path there
is resolved component by component: a symlink's absolute target starts again at the root (so
`/etc/flatcar/update.conf -> /etc/coreos/update.conf` stays on the host), a relative one at the
link's directory; a `..` that would climb above the root, or more than 40 links (the kernel's
limit), is refused with a `HostFileError` naming the path. Python has no openat2(RESOLVE_IN_ROOT),
so the final open also refuses a symlink (O_NOFOLLOW): one swapped in after the walk is not followed.

A file is read only when it is a regular file: it is looked at before it is opened, and opened
non-blocking, so a FIFO, socket or device in the place of machine-id, update.conf or a sysfs file
is a problem naming the path, never a read that waits for ever. Reads are size-capped.

Public API: `HostFileError`, `FILE_LIMIT`, `host_path(root, path)` (the plain join, for messages),
`resolve_in_root(root, path, *, follow_last=True) -> Path`,
`read_host_bytes(root, path, limit=FILE_LIMIT) -> bytes | None` and `read_host_file(...) -> str |
None` (None when missing), `read_limited(path, limit=FILE_LIMIT) -> str | None` and
`read_regular_bytes(path, limit, shown=None)` for a path already resolved (or outside any root).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = [
    "FILE_LIMIT",
    "HostFileError",
    "host_path",
    "read_host_bytes",
    "read_host_file",
    "read_limited",
    "read_regular_bytes",
    "resolve_in_root",
]

FILE_LIMIT = 64 * 1024  # bytes; every file read here is far smaller on a real host
_MAX_LINKS = 40  # MAXSYMLINKS in Linux
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class HostFileError(ValueError):
    """A host file that must be readable is missing or not what it should be; names the file."""


def host_path(root: Path, path: str) -> Path:
    """`path` (relative to the host's /) under `root`, as typed: no link followed."""
    return Path(root) / path.lstrip("/")


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """`path` under `root` with every symlink followed as on the host; HostFileError when a link or
    `..` leads out of the root. Components that do not exist are kept as they are."""
    root = Path(root)
    pending = [part for part in path.split("/") if part not in ("", ".")]
    done: list[str] = []
    links = 0
    missing = False  # below a missing component nothing is a link
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not done:
                raise HostFileError(f"{host_path(root, path)}: leads outside {root}; not followed")
            done.pop()
            continue
        if missing or (not pending and not follow_last):
            done.append(part)
            continue
        here = root.joinpath(*done, part)
        try:
            target = os.readlink(here)
        except FileNotFoundError:
            missing = True
            done.append(part)
            continue
        except OSError:  # EINVAL: not a link; ENOTDIR: a file on the way (the open will say)
            done.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise HostFileError(f"{host_path(root, path)}: more than {_MAX_LINKS} symlinks; not followed")
        if target.startswith("/"):
            done = []
        pending = [p for p in target.split("/") if p not in ("", ".")] + pending
    return root.joinpath(*done)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_regular_bytes(path: Path, limit: int = FILE_LIMIT, shown: Path | None = None) -> bytes | None:
    """The bytes of the regular file `path` (None when missing); HostFileError naming `shown` (or
    `path`) when it is something else, unreadable, or larger than `limit`."""
    name = shown if shown is not None else path
    where = f"{name}" if shown is None or shown == path else f"{name} (-> {path})"
    try:
        before = os.stat(path, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise HostFileError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(before.st_mode):
        kind = "a symlink" if stat.S_ISLNK(before.st_mode) else _kind(before.st_mode)
        raise HostFileError(f"{where}: {kind}, not a regular file; not read")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        detail = "a symlink appeared; not followed" if exc.errno == errno.ELOOP else exc.strerror
        raise HostFileError(f"{where}: cannot read: {detail or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the look and the open
            raise HostFileError(f"{where}: {_kind(os.fstat(fd).st_mode)}, not a regular file; not read")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise HostFileError(f"{where}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise HostFileError(f"{where}: larger than {limit} bytes; not read")
    return b"".join(chunks)


def read_limited(path: Path, limit: int = FILE_LIMIT) -> str | None:
    """The text of the regular file `path` (None when missing; invalid UTF-8 shown as U+FFFD)."""
    data = read_regular_bytes(path, limit)
    return None if data is None else data.decode("utf-8", "replace")


def read_host_bytes(root: Path, path: str, limit: int = FILE_LIMIT) -> bytes | None:
    """The bytes of the host's `path` under `root` (None when missing); HostFileError otherwise."""
    return read_regular_bytes(resolve_in_root(root, path), limit, host_path(root, path))


def read_host_file(root: Path, path: str, limit: int = FILE_LIMIT) -> str | None:
    data = read_host_bytes(root, path, limit)
    return None if data is None else data.decode("utf-8", "replace")
