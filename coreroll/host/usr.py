"""Which USR partition the host booted, from the kernel command line and sysfs (under the root).

GRUB passes the partition it chose on the command line: `verity.usr=PARTUUID=<uuid>` (dm-verity
images), `mount.usr=PARTUUID=<uuid>` / `usr=PARTUUID=<uuid>`, or a device (`mount.usr=/dev/sda3`,
`/dev/mapper/usr`, `/dev/disk/by-partuuid/...`, `/dev/disk/by-partlabel/...`). USR-A's PARTUUID is
7130c94a-213a-4e5a-8e26-6cce9662f132, USR-B's e03dd35c-7c2d-4a47-b3fe-27f15780a57c. A device is
followed in sysfs: a device-mapper device (dm-verity's `usr`) through its single `slaves/` entry
down to a partition, whose `uevent` names it (`PARTNAME=USR-A`, else `PARTN=3`/`4`). With nothing
usable on the command line, the dm device named `usr` is followed, then /usr's own device
(`/sys/dev/block/MAJ:MIN`). The disk holding the USR partitions (for `cgpt show`) comes from the
same walk, or from the sysfs partition whose PARTNAME is USR-A or USR-B.

Public API: `ActiveUsr(label, source, disk, problems)`, `active_usr(root) -> ActiveUsr`,
`parse_cmdline_usr(text) -> (label | None, source, device | None, problems)`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from coreroll.host.hostfs import HostFileError, host_path, read_host_file, resolve_in_root
from coreroll.node.partitions import LABELS, NUMBERS, PARTUUIDS
from coreroll.textsafe import visible

__all__ = ["ActiveUsr", "active_usr", "parse_cmdline_usr"]

_BY_UUID = {uuid: label for label, uuid in PARTUUIDS.items()}
_BY_NUMBER = {number: label for label, number in NUMBERS.items()}
_PARAMS = ("verity.usr", "mount.usr", "usr")  # most specific first: verity.usr names the data partition
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_MAX_DEPTH = 8  # device-mapper stacks are one or two deep; this bounds a hostile sysfs loop
_MAX_SCAN = 4096  # block devices looked at when searching sysfs


@dataclass(frozen=True)
class ActiveUsr:
    label: str | None  # "USR-A" | "USR-B" | None (unknown)
    source: str  # how it was found, e.g. "verity.usr=PARTUUID=7130c94a-..."
    disk: str | None  # kernel name of the disk holding it ("sda"), when sysfs tells
    problems: tuple[str, ...]


def _shown(text: str) -> str:
    return visible(text[:100]) + ("..." if len(text) > 100 else "")


def _by_uuid(uuid: str, where: str, problems: list[str]) -> str | None:
    if not _UUID.fullmatch(uuid):
        problems.append(f"{where}: '{_shown(uuid)}' is not a PARTUUID")
        return None
    label = _BY_UUID.get(uuid.lower())
    if label is None:
        problems.append(
            f"{where}: PARTUUID {uuid} is neither USR-A ({PARTUUIDS['USR-A']}) nor USR-B ({PARTUUIDS['USR-B']})"
        )
    return label


def parse_cmdline_usr(
    text: str, where: str = "/proc/cmdline"
) -> tuple[str | None, str, str | None, list[str]]:
    """(label, source, device to follow in sysfs, problems) from a kernel command line."""
    problems: list[str] = []
    params: dict[str, str] = {}
    for token in text.split():
        name, sep, value = token.partition("=")
        if sep and name in _PARAMS and name not in params:
            params[name] = value
    for name in _PARAMS:
        value = params.get(name)
        if value is None:
            continue
        source = f"{name}={_shown(value)}"
        if value.upper().startswith("PARTUUID="):
            label = _by_uuid(value[len("PARTUUID=") :], f"{where} {name}", problems)
            if label is not None:
                return label, source, None, problems
            continue
        if value.startswith("/dev/disk/by-partuuid/"):
            label = _by_uuid(value.rsplit("/", 1)[1], f"{where} {name}", problems)
            if label is not None:
                return label, source, None, problems
            continue
        if value.startswith("/dev/disk/by-partlabel/"):
            label = value.rsplit("/", 1)[1]
            if label in LABELS:
                return label, source, None, problems
            problems.append(f"{where} {name}: partition label '{_shown(label)}' is not USR-A or USR-B")
            continue
        if value.startswith("/dev/") and _KNAME.fullmatch(value[len("/dev/") :].replace("/", "-", 1)):
            return None, source, value, problems
        problems.append(f"{where} {name}: '{_shown(value)}' is neither PARTUUID=<uuid> nor a /dev path")
    return None, "", None, problems


class _Sysfs:
    """sysfs under the root: every path resolved inside it (`coreroll.host.hostfs`)."""

    _BLOCK = "sys/class/block"

    def __init__(self, root: Path, problems: list[str]) -> None:
        self.root = root
        self.problems = problems

    def _path(self, relative: str, *, follow_last: bool = True) -> Path | None:
        try:
            return resolve_in_root(self.root, relative, follow_last=follow_last)
        except HostFileError as exc:
            self.problems.append(str(exc))
            return None

    def _text(self, relative: str) -> str | None:
        try:
            return read_host_file(self.root, relative, 4096)
        except HostFileError as exc:
            self.problems.append(str(exc))
            return None

    def _listdir(self, relative: str) -> list[str]:
        path = self._path(relative)
        try:
            return sorted(os.listdir(path))[:_MAX_SCAN] if path is not None else []
        except OSError:
            return []

    def _exists(self, relative: str) -> bool:
        path = self._path(relative)
        return path is not None and path.exists()

    def dm_named(self, name: str) -> str | None:
        for entry in self._listdir(self._BLOCK):
            if entry.startswith("dm-"):
                text = self._text(f"{self._BLOCK}/{entry}/dm/name")
                if text is not None and text.strip() == name:
                    return entry
        return None

    def kname_of_device(self, device: str) -> str | None:
        """Kernel name of a /dev path: /dev/mapper/<name> -> dm-N, /dev/sda3 -> sda3."""
        if device.startswith("/dev/mapper/"):
            return self.dm_named(device[len("/dev/mapper/") :])
        return device[len("/dev/") :]

    def kname_of_devnum(self, relative: str) -> str | None:
        path = self._path(relative)
        try:
            st_dev = os.stat(path).st_dev if path is not None else None
        except OSError:
            return None
        if st_dev is None:
            return None
        link = self._path(f"sys/dev/block/{os.major(st_dev)}:{os.minor(st_dev)}", follow_last=False)
        try:
            return os.path.basename(os.readlink(link)) if link is not None else None
        except OSError:
            return None

    def follow(self, kname: str, where: str) -> tuple[str | None, str | None, str]:
        """(label, disk, path walked) from a block device down through device-mapper slaves."""
        walked = [kname]
        for _ in range(_MAX_DEPTH):
            if not _KNAME.fullmatch(kname):
                self.problems.append(f"{where}: '{_shown(kname)}' is not a block device name")
                return None, None, " -> ".join(walked)
            base = f"{self._BLOCK}/{kname}"
            if not self._exists(base):
                self.problems.append(f"{where}: {host_path(self.root, base)} does not exist")
                return None, None, " -> ".join(walked)
            slaves = self._listdir(f"{base}/slaves")
            if not slaves:
                label = self._partition_label(base, where)
                return label, self._disk_of(base), " -> ".join(walked)
            if len(slaves) != 1:
                self.problems.append(
                    f"{where}: {host_path(self.root, base)}/slaves holds {len(slaves)} devices, expected one"
                )
                return None, None, " -> ".join(walked)
            kname = slaves[0]
            walked.append(kname)
        self.problems.append(f"{where}: device-mapper stack deeper than {_MAX_DEPTH}")
        return None, None, " -> ".join(walked)

    def _partition_label(self, base: str, where: str) -> str | None:
        name_of_base = base.rsplit("/", 1)[1]
        uevent = self._text(f"{base}/uevent") or ""
        values = dict(line.split("=", 1) for line in uevent.splitlines() if "=" in line)
        name = values.get("PARTNAME")
        if name is not None:
            if name in LABELS:
                return name
            self.problems.append(f"{where}: {name_of_base} is partition '{_shown(name)}', not USR-A or USR-B")
            return None
        number = values.get("PARTN") or (self._text(f"{base}/partition") or "").strip()
        if re.fullmatch(r"[0-9]{1,3}", number or "") and int(number) in _BY_NUMBER:
            return _BY_NUMBER[int(number)]
        self.problems.append(f"{where}: {name_of_base} is not partition 3 (USR-A) or 4 (USR-B)")
        return None

    def _disk_of(self, base: str) -> str | None:
        """sysfs puts a partition under its disk: /sys/class/block/sda3 -> .../block/sda/sda3."""
        path = self._path(base)
        if path is None:
            return None
        parent = path.parent.name
        return parent if _KNAME.fullmatch(parent) and self._exists(f"{self._BLOCK}/{parent}") else None

    def usr_disk(self) -> str | None:
        for entry in self._listdir(self._BLOCK):
            text = self._text(f"{self._BLOCK}/{entry}/uevent") or ""
            if any(line in ("PARTNAME=USR-A", "PARTNAME=USR-B") for line in text.splitlines()):
                return self._disk_of(f"{self._BLOCK}/{entry}")
        return None


def active_usr(root: Path) -> ActiveUsr:
    problems: list[str] = []
    cmdline_path = host_path(root, "proc/cmdline")
    try:
        text = read_host_file(root, "proc/cmdline", 16 * 1024)
    except HostFileError as exc:
        problems.append(str(exc))
        text = None
    if text is None:
        problems.append(f"{cmdline_path}: missing")
        text = ""
    label, source, device, found = parse_cmdline_usr(text, str(cmdline_path))
    problems.extend(found)
    sysfs = _Sysfs(root, problems)
    if label is not None:
        return ActiveUsr(label, source, sysfs.usr_disk(), tuple(problems))
    candidates: list[tuple[str | None, str]] = []
    if device is not None:
        candidates.append((sysfs.kname_of_device(device), f"{source} in sysfs"))
    candidates.append((sysfs.dm_named("usr"), "the device-mapper device 'usr' in sysfs"))
    candidates.append((sysfs.kname_of_devnum("usr"), "/usr's device in sysfs"))
    for kname, where in candidates:
        if kname is None:
            continue
        label, disk, walked = sysfs.follow(kname, where)
        if label is not None:
            return ActiveUsr(label, f"{where}: {walked}", disk or sysfs.usr_disk(), tuple(problems))
    problems.append(f"active USR partition unknown: nothing in {cmdline_path} or sysfs names it")
    return ActiveUsr(None, "", sysfs.usr_disk(), tuple(problems))
