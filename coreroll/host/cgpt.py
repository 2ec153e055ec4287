"""The USR partitions' GPT attributes from `cgpt show`, as Flatcar's cgpt prints them (and as
`coreroll.node.partitions.cgpt_show` does for a simulated disk):

           start        size    part  contents
          270336     2097152       3  Label: "USR-A"
                                      Type: Alias for coreos-rootfs
                                      UUID: 7130C94A-213A-4E5A-8E26-6CCE9662F132
                                      Attr: priority=1 tries=0 successful=1

A USR partition is recognised by its label or its PARTUUID; other partitions (EFI-SYSTEM, OEM,
ROOT, ...) are skipped. Attributes are read with explicit patterns and bounds (priority and tries
0-15, successful 0-1); a value out of bounds is a problem and is reported as unknown (None).

Public API: `UsrAttributes(label, number, priority, tries, successful)`,
`parse_cgpt_show(text, source) -> (list[UsrAttributes], problems)`,
`async read_usr_attributes(disk, cgpt="cgpt") -> (list[UsrAttributes], problems)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coreroll.host.tools import ToolError, run_tool
from coreroll.node.partitions import LABELS, PARTUUIDS
from coreroll.textsafe import visible

__all__ = ["UsrAttributes", "parse_cgpt_show", "read_usr_attributes"]

_START = re.compile(r'^\s*([0-9]{1,20})\s+([0-9]{1,20})\s+([0-9]{1,3})\s+Label:\s*"([^"]{0,72})"\s*$')
_UUID = re.compile(r"^\s+UUID:\s*([0-9A-Fa-f-]{36})\s*$")
_ATTR = re.compile(r"^\s+Attr:\s*(.*)$")
_FIELD = re.compile(r"\b(priority|tries|successful)=([0-9]{1,3})\b")
_BOUNDS = {"priority": 15, "tries": 15, "successful": 1}
_BY_UUID = {uuid: label for label, uuid in PARTUUIDS.items()}
_DISK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class UsrAttributes:
    label: str
    number: int
    priority: int | None
    tries: int | None
    successful: int | None


@dataclass
class _Entry:
    label: str
    number: int
    uuid: str | None = None
    attr: str | None = None


def parse_cgpt_show(text: str, source: str = "cgpt show") -> tuple[list[UsrAttributes], list[str]]:
    problems: list[str] = []
    entries: list[_Entry] = []
    current: _Entry | None = None
    for line in text.splitlines()[:4096]:
        start = _START.match(line)
        if start is not None:
            current = _Entry(start.group(4), int(start.group(3)))
            entries.append(current)
            continue
        if current is None:
            continue
        if (uuid := _UUID.match(line)) is not None:
            current.uuid = uuid.group(1).lower()
        elif (attr := _ATTR.match(line)) is not None:
            current.attr = attr.group(1)
    found: dict[str, UsrAttributes] = {}
    for entry in entries:
        label = _BY_UUID.get(entry.uuid or "") or (entry.label if entry.label in LABELS else None)
        if label is None or label in found:
            continue
        values: dict[str, int | None] = dict.fromkeys(_BOUNDS)
        for name, digits in _FIELD.findall(entry.attr or ""):
            number = int(digits)
            if number > _BOUNDS[name]:
                problems.append(f"{source}: {label} {name}={number} is out of range 0-{_BOUNDS[name]}")
            else:
                values[name] = number
        missing = [name for name, value in values.items() if value is None]
        if missing and entry.attr is not None:
            problems.append(f"{source}: {label} Attr '{visible(entry.attr[:80])}' lacks {', '.join(missing)}")
        found[label] = UsrAttributes(
            label, entry.number, values["priority"], values["tries"], values["successful"]
        )
    if not found:
        problems.append(f"{source}: no USR-A or USR-B partition in the output")
    return [found[label] for label in LABELS if label in found], problems


async def read_usr_attributes(disk: str, cgpt: str = "cgpt") -> tuple[list[UsrAttributes], list[str]]:
    """`cgpt show /dev/<disk>`, parsed; a missing or failing cgpt is a problem, not an error."""
    if not _DISK.fullmatch(disk):
        return [], [f"disk name '{visible(disk[:80])}' is not a block device name"]
    argv = [cgpt, "show", f"/dev/{disk}"]
    try:
        output = await run_tool(argv)
    except ToolError as exc:
        return [], [str(exc)]
    return parse_cgpt_show(output, " ".join(argv))
