"""What a Flatcar host says about itself in its files, read under a root directory (`/`, or
`/host` in the reporter's container). Everything read is hostile: paths are resolved inside the
root and only regular files read (`coreroll.host.hostfs`), files are size-capped, values checked
against explicit patterns, and each problem becomes a message naming the file and showing the text
with control characters made visible; the value is then unknown (None), never guessed.

- machine id: `/etc/machine-id` (32 lowercase hex digits; anything else is a `HostFileError`:
  without it there is no key to report under);
- version: `/usr/share/flatcar/release` `FLATCAR_RELEASE_VERSION=` (or CoreOS's
  `/usr/share/coreos/release` `COREOS_RELEASE_VERSION=`), else `/etc/os-release` (or
  `/usr/lib/os-release`) `VERSION=`;
- update.conf: `/usr/share/flatcar/update.conf`, overlaid by `/etc/coreos/update.conf`, overlaid by
  `/etc/flatcar/update.conf` (a key's last value wins, as the EnvironmentFile= lines of
  locksmithd.service and update_engine's lookup order give it; each key read the way its program
  reads it: `coreroll.node.updateconf`); `/etc/flatcar/update.conf` is the file a channel switch
  writes (`WRITABLE_UPDATE_CONF`). The channel (GROUP) must be a channel name
  (`coreroll.wire.channel`) and the server (SERVER) printable ASCII without blanks; else it is
  unknown, with a problem naming the file and line;
- hostname: `/etc/hostname`, else the kernel's (the container runs in the host's UTS namespace);
- boot id and boot time: `/proc/sys/kernel/random/boot_id`, `btime` in `/proc/stat` (under the root
  when mounted there, else this kernel's: both are the same for every container on the host); a
  boot time after 9999-12-31 (the last the dashboard shows) is unknown, with a problem.

Public API: `HostFacts`, `read_facts(root) -> HostFacts`, `read_machine_id(root) -> str`,
`writable_update_conf(root) -> Path`, `WRITABLE_UPDATE_CONF`, `UPDATE_CONF_LAYERS`; and, from
`coreroll.host.hostfs`, `HostFileError`, `read_limited(path) -> str | None`, `host_path(root, path)`.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from coreroll.host.hostfs import (
    HostFileError,
    host_path,
    read_host_bytes,
    read_host_file,
    read_limited,
    resolve_in_root,
)
from coreroll.node.updateconf import UpdateConf
from coreroll.node.window import WindowError, window_from_settings
from coreroll.textsafe import visible
from coreroll.watch.parse import TIME_MAX
from coreroll.wire.channel import channel_problem
from coreroll.wirenum import NumberError, parse_int

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
_BTIME = re.compile(r"^btime (\S{1,40})$", re.MULTILINE)
_SERVER = re.compile(r"[!-~]{1,2048}")  # a URL, or Flatcar's documented SERVER=disabled


def _shown(text: str, limit: int = 80) -> str:
    return visible(text[:limit]) + ("..." if len(text) > limit else "")


def read_machine_id(root: Path) -> str:
    path = host_path(root, MACHINE_ID)
    text = read_host_file(root, MACHINE_ID)
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
    channel: str | None  # GROUP when it is a channel name
    server: str | None  # SERVER when it is a URL
    window: str | None  # the reboot window as the agent reports it ("Thu 23:00 1h30m")
    boot_id: str | None
    booted_at: float | None
    problems: tuple[str, ...]


def _read(root: Path, relative: str, problems: list[str]) -> str | None:
    try:
        return read_host_file(root, relative)
    except HostFileError as exc:
        problems.append(str(exc))
        return None


def _version(root: Path, problems: list[str]) -> str | None:
    bad = False
    for relative, key in RELEASE_FILES:
        path = host_path(root, relative)
        text = _read(root, relative, problems)
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
    layers: list[UpdateConf] = []
    for relative in UPDATE_CONF_LAYERS:
        try:
            data = read_host_bytes(root, relative)
        except HostFileError as exc:
            problems.append(str(exc))
            continue
        if data is not None:
            layers.append(UpdateConf.parse(data, str(host_path(root, relative))))
    merged = UpdateConf.merged(layers)
    problems.extend(visible(w) for w in merged.warnings)
    return merged


def _channel_and_server(conf: UpdateConf, problems: list[str]) -> tuple[str | None, str | None]:
    """GROUP and SERVER as update_engine sends and uses them, when they are what they should be."""
    channel: str | None = conf.group
    problem = channel_problem(channel)
    if problem is not None:
        problems.append(f"{conf.where('GROUP')}: GROUP {problem}; channel unknown")
        channel = None
    server: str | None = conf.server
    if not _SERVER.fullmatch(conf.server):
        problems.append(
            f"{conf.where('SERVER')}: SERVER '{_shown(conf.server)}' is not a URL (printable ASCII, "
            "no blanks); server unknown"
        )
        server = None
    return channel, server


def _hostname(root: Path, problems: list[str]) -> str | None:
    path = host_path(root, "etc/hostname")
    text = _read(root, "etc/hostname", problems)
    for candidate, source in ((text, str(path)), (socket.gethostname(), "the kernel")):
        if candidate is None or not candidate.strip():
            continue
        value = candidate.strip()
        if _HOSTNAME.fullmatch(value):
            return value
        problems.append(f"{source}: hostname '{_shown(value)}' is not a host name")
    return None


def _kernel_file(root: Path, relative: str, problems: list[str]) -> tuple[Path, str | None]:
    """(path, text): under the root when mounted there, else this kernel's own (the same on every
    container of the host)."""
    try:
        text = read_host_file(root, relative)
        if text is not None:
            return host_path(root, relative), text
        path = Path("/") / relative
        return path, read_limited(path)
    except HostFileError as exc:
        problems.append(str(exc))
        return host_path(root, relative), None


def _boot(root: Path, problems: list[str]) -> tuple[str | None, float | None]:
    boot_id = None
    path, text = _kernel_file(root, "proc/sys/kernel/random/boot_id", problems)
    if text is not None:
        if _BOOT_ID.fullmatch(text.strip()):
            boot_id = text.strip()
        else:
            problems.append(f"{path}: '{_shown(text.strip())}' is not a boot id")
    booted_at = None
    path, text = _kernel_file(root, "proc/stat", problems)
    if text is not None:
        match = _BTIME.search(text)
        if match is None:
            problems.append(f"{path}: no btime line")
        else:
            try:  # the dashboard shows times up to 9999-12-31: a later one would stop every report
                booted_at = float(parse_int(match.group(1), "btime", 0, int(TIME_MAX)))
            except NumberError as exc:
                problems.append(f"{path}: {visible(str(exc))}; boot time unknown")
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
    channel, server = _channel_and_server(conf, problems)
    boot_id, booted_at = _boot(root, problems)
    return HostFacts(
        machine_id=machine_id,
        hostname=_hostname(root, problems),
        version=_version(root, problems),
        conf=conf,
        channel=channel,
        server=server,
        window=_window(conf, problems),
        boot_id=boot_id,
        booted_at=booted_at,
        problems=tuple(problems),
    )


def writable_update_conf(root: Path) -> Path:
    """Where a channel switch writes: /etc/flatcar/update.conf under the root, its symlinks followed
    inside the root (the link itself is kept); HostFileError when one leads out of it."""
    return resolve_in_root(root, WRITABLE_UPDATE_CONF)
