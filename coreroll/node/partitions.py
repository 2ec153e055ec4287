"""A node's disk as a state directory: the USR-A/USR-B partition table and one image file per slot.

The boot flags follow GRUB's `gptprio.next` and `cgpt` exactly (as Flatcar ships them):
- `boot()`: among the USR partitions pick the highest priority (strict `>` from 0, so priority 0
  is never chosen and a tie goes to the lower partition number) whose `tries > 0` or
  `successful`; if its tries are > 0, decrement them and persist BEFORE booting.
  A partition at tries 0 / successful 0 is skipped, so a failed new image rolls back by itself.
- `postinstall(label)` = flatcar-postinst: `cgpt add -S0 -T1` + `cgpt prioritize`.
- `mark_good()` = flatcar-setgoodroot on the booted partition: `cgpt add -S1 -T0` + `cgpt prioritize`.
- `prioritize(label)` = `cgpt prioritize`: the chosen partition takes the highest priority in
  use (at least 1); the others keep their order below it, coalescing at 1, never lowered to 0.

Layout of the state directory: `disk.json` (the table, which partition booted) and
`usr-a.img` / `usr-b.img` (the images). Every write goes to a temporary file, is flushed and
renamed over the old one, so a node killed mid-write keeps either the old or the new state. A
table that cannot be parsed raises `DiskFormatError` naming the file and is never overwritten.

Public API:
- `Partition` (frozen dataclass): label, number, partuuid, type_guid, priority, tries,
  successful, version, start, size.
- `Disk(state_dir, fsync=True)` opens an existing disk; `Disk.create(state_dir, version, image)`
  makes a fresh install (USR-A prio 2 tries 0 successful 1 holding `version`, booted; USR-B prio 1
  tries 0 successful 0, empty). `Disk.exists(state_dir)`.
- `disk.table()`, `disk.partition(label)`, `disk.active` (booted), `disk.inactive`,
  `disk.boot()` (raises `NoBootablePartitionError`), `disk.write_image(label, image, version)`,
  `disk.read_image(label)`, `disk.postinstall(label)`, `disk.mark_good()`,
  `disk.set_attributes(label, priority=, tries=, successful=)` (= `cgpt add -P -T -S`),
  `disk.prioritize(label)`, `disk.rolled_back()` (the other slot holds an update that failed to boot).
- `cgpt_show(disk) -> str`: the USR partitions the way `cgpt show` prints them.
- `atomic_write(path, data, fsync=True)` (from `coreroll.atomicfile`): the write-then-rename used for every state file.
- Constants: `USR_TYPE_GUID`, `PARTUUIDS`, `LABELS`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from coreroll.atomicfile import atomic_write

USR_TYPE_GUID = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"
# USR-A's PARTUUID is fixed by Flatcar's disk layout; USR-B's likewise (build_library/disk_layout.json).
PARTUUIDS = {
    "USR-A": "7130c94a-213a-4e5a-8e26-6cce9662f132",
    "USR-B": "e03dd35c-7c2d-4a47-b3fe-27f15780a57c",
}
LABELS = ("USR-A", "USR-B")
NUMBERS = {"USR-A": 3, "USR-B": 4}
# Sector layout of Flatcar's default disk (512-byte sectors): 1 GiB USR partitions.
STARTS = {"USR-A": 270336, "USR-B": 2367488}
USR_SECTORS = 2097152
TABLE_FILE = "disk.json"
FORMAT_VERSION = 1


class PartitionError(Exception):
    """A partition operation that cannot be done (bad label, bad attribute value, writing the booted slot)."""


class NoBootablePartitionError(PartitionError):
    """No USR partition has priority > 0 with tries left or marked successful: GRUB would stop here."""


class DiskFormatError(PartitionError):
    """The state directory's table cannot be read; it is left untouched."""


@dataclass(frozen=True)
class Partition:
    label: str
    number: int
    partuuid: str
    type_guid: str
    priority: int
    tries: int
    successful: int
    version: str | None
    start: int = 0
    size: int = USR_SECTORS


def _fresh(label: str, priority: int, tries: int, successful: int, version: str | None) -> Partition:
    return Partition(
        label=label,
        number=NUMBERS[label],
        partuuid=PARTUUIDS[label],
        type_guid=USR_TYPE_GUID,
        priority=priority,
        tries=tries,
        successful=successful,
        version=version,
        start=STARTS[label],
        size=USR_SECTORS,
    )


def _check_label(label: str) -> str:
    if label not in LABELS:
        raise PartitionError(f"unknown partition {label!r}: expected one of {', '.join(LABELS)}")
    return label


def _check_range(name: str, value: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise PartitionError(f"{name} must be an integer {low}-{high}, not {value!r}")
    return value


class Disk:
    """The partition table and images of one node, persisted in `state_dir`."""

    def __init__(self, state_dir: Path | str, fsync: bool = True) -> None:
        self.state_dir = Path(state_dir)
        self.fsync = fsync
        self._path = self.state_dir / TABLE_FILE
        self._parts: dict[str, Partition] = {}
        self._booted = "USR-A"
        self._load()

    # ----- persistence -------------------------------------------------------------------
    @staticmethod
    def exists(state_dir: Path | str) -> bool:
        return (Path(state_dir) / TABLE_FILE).is_file()

    @classmethod
    def create(cls, state_dir: Path | str, version: str, image: bytes, fsync: bool = True) -> Disk:
        """A fresh install: USR-A holds `version` and is booted, USR-B is empty."""
        directory = Path(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / TABLE_FILE).exists():
            raise PartitionError(f"{directory / TABLE_FILE} already exists: refusing to reinstall over it")
        atomic_write(directory / "usr-a.img", image, fsync)
        parts = {
            "USR-A": _fresh("USR-A", 2, 0, 1, version),
            "USR-B": _fresh("USR-B", 1, 0, 0, None),
        }
        atomic_write(directory / TABLE_FILE, _encode(parts, "USR-A"), fsync)
        return cls(directory, fsync=fsync)

    def _load(self) -> None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            raise DiskFormatError(f"{self._path}: no partition table (create the disk first)") from None
        try:
            doc = json.loads(raw)
            booted = doc["booted"]
            parts = {}
            for entry in doc["partitions"]:
                part = Partition(**entry)
                _check_label(part.label)
                _check_range(f"{part.label} priority", part.priority, 0, 15)
                _check_range(f"{part.label} tries", part.tries, 0, 15)
                _check_range(f"{part.label} successful", part.successful, 0, 1)
                parts[part.label] = part
            if set(parts) != set(LABELS) or booted not in LABELS:
                raise ValueError(f"expected partitions {LABELS} and a booted label")
        except (ValueError, KeyError, TypeError, PartitionError) as exc:
            raise DiskFormatError(f"{self._path}: not a coreroll partition table: {exc}") from None
        self._parts = parts
        self._booted = booted

    def _save(self) -> None:
        atomic_write(self._path, _encode(self._parts, self._booted), self.fsync)

    def _image_path(self, label: str) -> Path:
        return self.state_dir / f"{_check_label(label).lower()}.img"

    # ----- reading -----------------------------------------------------------------------
    def table(self) -> list[Partition]:
        return [self._parts[label] for label in LABELS]

    def partition(self, label: str) -> Partition:
        return self._parts[_check_label(label)]

    @property
    def active(self) -> Partition:
        """The partition the node booted from."""
        return self._parts[self._booted]

    @property
    def inactive(self) -> Partition:
        return self._parts[_other(self._booted)]

    def read_image(self, label: str) -> bytes:
        path = self._image_path(label)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise PartitionError(f"{label} holds no image") from None

    def rolled_back(self) -> bool:
        """True when the other slot holds an update GRUB gave up on: it was prioritised above the
        booted one but ran out of tries without being marked good (update_engine's RollbackError)."""
        other = self.inactive
        return (
            other.version is not None
            and other.tries == 0
            and not other.successful
            and other.priority > self.active.priority
        )

    # ----- gptprio -----------------------------------------------------------------------
    def boot(self) -> Partition:
        """GRUB's `gptprio.next`: choose, decrement tries (persisted first), remember the choice."""
        chosen: Partition | None = None
        best = 0
        for part in self.table():
            if (part.tries > 0 or part.successful) and part.priority > best:
                chosen, best = part, part.priority
        if chosen is None:
            raise NoBootablePartitionError(
                "no bootable USR partition: "
                + "; ".join(
                    f"{p.label} priority={p.priority} tries={p.tries} successful={p.successful}"
                    for p in self.table()
                )
            )
        if chosen.tries > 0:
            chosen = replace(chosen, tries=chosen.tries - 1)
            self._parts[chosen.label] = chosen
        self._booted = chosen.label
        self._save()
        return chosen

    def set_attributes(
        self,
        label: str,
        *,
        priority: int | None = None,
        tries: int | None = None,
        successful: int | None = None,
    ) -> Partition:
        """`cgpt add -i N [-P p] [-T t] [-S s]`."""
        part = self.partition(label)
        changes: dict[str, Any] = {}
        if priority is not None:
            changes["priority"] = _check_range("priority", priority, 0, 15)
        if tries is not None:
            changes["tries"] = _check_range("tries", tries, 0, 15)
        if successful is not None:
            changes["successful"] = _check_range("successful", int(successful), 0, 1)
        self._parts[label] = replace(part, **changes)
        self._save()
        return self._parts[label]

    def prioritize(self, label: str) -> None:
        """`cgpt prioritize -i N`: N gets the highest priority in use; the others keep their order."""
        self._prioritize(_check_label(label))
        self._save()

    def _prioritize(self, label: str) -> None:
        top = max(1, max(p.priority for p in self._parts.values()))
        others = [p for p in self.table() if p.label != label]
        levels = sorted({p.priority for p in others if p.priority > 0}, reverse=True)
        for part in others:
            if part.priority > 0:
                rank = levels.index(part.priority)
                self._parts[part.label] = replace(part, priority=max(1, top - 1 - rank))
        self._parts[label] = replace(self._parts[label], priority=top)

    def write_image(self, label: str, image: bytes, version: str) -> None:
        """Write `image` to `label` (never the booted partition). The slot loses `successful` and
        its tries, since what was verified good is gone; postinstall then makes it bootable."""
        _check_label(label)
        if label == self._booted:
            raise PartitionError(f"refusing to write {label}: it is the booted partition")
        part = self._parts[label]
        self._parts[label] = replace(part, version=None, successful=0, tries=0)
        self._save()
        atomic_write(self._image_path(label), image, self.fsync)
        self._parts[label] = replace(self._parts[label], version=version)
        self._save()

    def postinstall(self, label: str) -> None:
        """flatcar-postinst: `cgpt add -S0 -T1` on the new partition, then `cgpt prioritize` it."""
        part = self.partition(label)
        if part.version is None:
            raise PartitionError(f"{label} holds no image: nothing to install")
        self._parts[label] = replace(part, successful=0, tries=1)
        self._prioritize(label)
        self._save()

    def mark_good(self) -> None:
        """flatcar-setgoodroot: `cgpt add -S1 -T0` on the booted partition, then prioritise it."""
        part = self.active
        self._parts[part.label] = replace(part, successful=1, tries=0)
        self._prioritize(part.label)
        self._save()


def _other(label: str) -> str:
    return "USR-B" if label == "USR-A" else "USR-A"


def _encode(parts: dict[str, Partition], booted: str) -> bytes:
    doc = {
        "format": FORMAT_VERSION,
        "booted": booted,
        "partitions": [asdict(parts[label]) for label in LABELS],
    }
    return json.dumps(doc, indent=2).encode() + b"\n"


_ROW = "{:>12}{:>12}{:>8}  {}"
_MORE = " " * 32 + "  {}"


def cgpt_show(disk: Disk) -> str:
    """The USR partitions as `cgpt show DRIVE` lays them out (start/size/part/contents columns)."""
    lines = [_ROW.format("start", "size", "part", "contents")]
    for part in disk.table():
        lines.append(_ROW.format(part.start, part.size, part.number, f'Label: "{part.label}"'))
        lines.append(_MORE.format("Type: Alias for coreos-rootfs"))
        lines.append(_MORE.format(f"UUID: {part.partuuid.upper()}"))
        lines.append(
            _MORE.format(f"Attr: priority={part.priority} tries={part.tries} successful={part.successful}")
        )
    return "\n".join(lines) + "\n"
