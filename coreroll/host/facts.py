"""What a Flatcar host says about itself in its files, read under a root directory (`/`, or
`/host` in the reporter's container). Everything read is hostile: files are size-capped, values
checked against explicit patterns, and each problem becomes a message naming the file and showing
the text with control characters made visible; the value is then unknown (None), never guessed.

- machine id: `/etc/machine-id` (32 lowercase hex digits; anything else is a `HostFileError`:
  without it there is no key to report under);
- version: `/usr/share/flatcar/release` `FLATCAR_RELEASE_VERSION=` (or CoreOS's
  `/usr/share/coreos/release` `COREOS_RELEASE_VERSION=`), else `/etc/os-release` (or
  `/usr/lib/os-release`) `VERSION=`;
- update.conf: `/usr/share/flatcar/update.conf`, overlaid by `/etc/coreos/update.conf`, overlaid by
  `/etc/flatcar/update.conf` (a key's last value wins, as the EnvironmentFile= lines of
  locksmithd.service and update_engine's lookup order give it); `/etc/flatcar/update.conf` is the
  file a channel switch writes (`WRITABLE_UPDATE_CONF`);
- hostname: `/etc/hostname`, else the kernel's (the container runs in the host's UTS namespace);
- boot id and boot time: `/proc/sys/kernel/random/boot_id`, `btime` in `/proc/stat` (under the root
  when mounted there, else this kernel's: both are the same for every container on the host).

Public API: `HostFileError`, `HostFacts`, `read_facts(root) -> HostFacts`,
`read_machine_id(root) -> str`, `read_limited(path) -> str | None`, `host_path(root, path)`,
`writable_update_conf(root) -> Path`,
`WRITABLE_UPDATE_CONF`, `UPDATE_CONF_LAYERS`.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from coreroll.node.updateconf import UpdateConf
from coreroll.node.window import WindowError, window_from_settings
from coreroll.textsafe import visible

__all__ = [
    "UPDATE_CONF_LAYERS",
    "WRITABLE_UPDATE_CONF",
    "HostFacts",
    "HostFileError",
    "host_path",
    "read_facts",
    "read_limited",
    "read_machine_id",
    "writable_update_conf",
]

FILE_LIMIT = 64 * 1024  # bytes; every file read here is far smaller on a real host
MACHINE_ID = "etc/machine-id"
RELEASE_FILES = (
    ("usr/share/flatcar/release", "FLATCAR_RELEASE_VERSION"),
    ("usr/share/coreos/release", "COREOS_RELEASE_VERSION"),
    ("etc/os-release", "VERSION"),
    ("usr/lib/os-release", "VERSION"),
)
UPDATE_CONF_LAYERS = (  # lowest first
    "usr/share/flatcar/update.conf",
    "etc/coreos/update.conf",
    "etc/flatcar/update.conf",
)
WRITABLE_UPDATE_CONF = "etc/flatcar/update.conf"
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}")
_HOSTNAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z.-]{0,252}")
_BOOT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BTIME = re.compile(r"^btime ([0-9]{1,12})$", re.MULTILINE)


class HostFileError(ValueError):
    """A host file that must be readable is missing or not what it should be; names the file."""


def host_path(root: Path, path: str) -> Path:
    """`path` (relative to the host's /) under `root`."""
    return root / path.lstrip("/")


def read_limited(path: Path, limit: int = FILE_LIMIT) -> str | None:
    """The text of `path` (None when it does not exist); HostFileError when unreadable or too big."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise HostFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise HostFileError(f"{path}: larger than {limit} bytes; not read")
    return data.decode("utf-8", "replace")


def _shown(text: str, limit: int = 80) -> str:
    return visible(text[:limit]) + ("..." if len(text) > limit else "")


def read_machine_id(root: Path) -> str:
    path = host_path(root, MACHINE_ID)
    text = read_limited(path)
    if text is None:
        raise HostFileError(f"{path}: missing (is --root the host's / ?)")
    value = text.strip()
    if not _MACHINE_ID.fullmatch(value):
        raise HostFileError(f"{path}: '{_shown(value)}' is not a machine id (32 lowercase hex digits)")
    return value


@dataclass(frozen=True)
class HostFacts:
    machine_id: str
    hostname: str | None
    version: str | None
    conf: UpdateConf  # the layers merged: GROUP, SERVER, REBOOT_STRATEGY, LOCKSMITHD_* ...
    window: str | None  # the reboot window as the agent reports it ("Thu 23:00 1h30m")
    boot_id: str | None
    booted_at: float | None
    problems: tuple[str, ...]


def _read(path: Path, problems: list[str]) -> str | None:
    try:
        return read_limited(path)
    except HostFileError as exc:
        problems.append(str(exc))
        return None


def _version(root: Path, problems: list[str]) -> str | None:
    bad = False
    for relative, key in RELEASE_FILES:
        path = host_path(root, relative)
        text = _read(path, problems)
        if text is None:
            continue
        value = UpdateConf.parse(text, str(path)).get(key)
        if value is None:
            continue
        if _VERSION.fullmatch(value):
            return value
        problems.append(f"{path}: {key}='{_shown(value)}' is not a version")
        bad = True  # the next file may still name it; the problem stays reported
    if bad:
        return None
    problems.append(
        f"no version: none of {', '.join(str(host_path(root, r)) for r, _ in RELEASE_FILES)} names one"
    )
    return None


def _update_conf(root: Path, problems: list[str]) -> UpdateConf:
    merged = UpdateConf.parse("", "update.conf (merged)")
    for relative in UPDATE_CONF_LAYERS:
        path = host_path(root, relative)
        text = _read(path, problems)
        if text is None:
            continue
        layer = UpdateConf.parse(text, str(path))
        problems.extend(visible(w) for w in layer.warnings)
        for key in layer.keys():
            value = layer.get(key)
            if value is not None and "\n" not in value and "\r" not in value:
                merged.set(key, value)
    return merged


def _hostname(root: Path, problems: list[str]) -> str | None:
    path = host_path(root, "etc/hostname")
    text = _read(path, problems)
    for candidate, source in ((text, str(path)), (socket.gethostname(), "the kernel")):
        if candidate is None or not candidate.strip():
            continue
        value = candidate.strip()
        if _HOSTNAME.fullmatch(value):
            return value
        problems.append(f"{source}: hostname '{_shown(value)}' is not a host name")
    return None


def _kernel_file(root: Path, relative: str) -> Path:
    """Under the root when mounted there; else this kernel's own (the same on every container)."""
    path = host_path(root, relative)
    return path if path.exists() else Path("/") / relative


def _boot(root: Path, problems: list[str]) -> tuple[str | None, float | None]:
    boot_id = None
    path = _kernel_file(root, "proc/sys/kernel/random/boot_id")
    text = _read(path, problems)
    if text is not None:
        if _BOOT_ID.fullmatch(text.strip()):
            boot_id = text.strip()
        else:
            problems.append(f"{path}: '{_shown(text.strip())}' is not a boot id")
    booted_at = None
    path = _kernel_file(root, "proc/stat")
    text = _read(path, problems) if path.is_file() else None
    if text is not None:
        match = _BTIME.search(text)
        if match is None:
            problems.append(f"{path}: no btime line")
        else:
            booted_at = float(match.group(1))
    return boot_id, booted_at


def _window(conf: UpdateConf, problems: list[str]) -> str | None:
    try:
        window = window_from_settings(conf.window_start, conf.window_length)
    except WindowError as exc:
        problems.append(f"update.conf: {visible(str(exc))}")
        return None
    return str(window) if window is not None else None


def read_facts(root: Path) -> HostFacts:
    """Everything above; raises HostFileError only for the machine id."""
    problems: list[str] = []
    machine_id = read_machine_id(root)
    conf = _update_conf(root, problems)
    boot_id, booted_at = _boot(root, problems)
    return HostFacts(
        machine_id=machine_id,
        hostname=_hostname(root, problems),
        version=_version(root, problems),
        conf=conf,
        window=_window(conf, problems),
        boot_id=boot_id,
        booted_at=booted_at,
        problems=tuple(problems),
    )


def writable_update_conf(root: Path) -> Path:
    """Where a channel switch writes: /etc/flatcar/update.conf under the root. A symlink there (to
    an absolute host path) is followed under the root, so the link itself is kept."""
    path = host_path(root, WRITABLE_UPDATE_CONF)
    for _ in range(8):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = host_path(root, target) if target.startswith("/") else path.parent / target
    raise HostFileError(f"{host_path(root, WRITABLE_UPDATE_CONF)}: too many symlinks")
