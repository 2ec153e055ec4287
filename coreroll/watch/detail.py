"""What the node detail page shows beyond the row: the USR partition table as `cgpt show` lays it out.

A node reports each USR partition's attributes (label, version, priority, tries, successful); where
the partition sits on the disk is Flatcar's fixed default layout (`coreroll.node.partitions`), so
it is filled in here, once, and the UI never reads the disk geometry itself.

    detail = node_detail(row)     # NodeDetail(row, partitions=(PartitionLine(...), ...))
"""

from __future__ import annotations

from dataclasses import dataclass

from coreroll.node.partitions import NUMBERS, STARTS, USR_SECTORS
from coreroll.watch.views import NodeRow


@dataclass(frozen=True, slots=True)
class PartitionLine:
    """One reported USR partition; `number`/`start`/`size` None for a label Flatcar's layout lacks."""

    label: str
    number: int | None
    start: int | None
    size: int | None
    booted: bool
    version: str | None
    priority: int | None
    tries: int | None
    successful: int | None


@dataclass(frozen=True, slots=True)
class NodeDetail:
    row: NodeRow
    partitions: tuple[PartitionLine, ...]


def node_detail(row: NodeRow) -> NodeDetail:
    lines = tuple(
        PartitionLine(
            label=part.label,
            number=NUMBERS.get(part.label),
            start=STARTS.get(part.label),
            size=USR_SECTORS if part.label in NUMBERS else None,
            booted=part.label == row.active_partition,
            version=part.version,
            priority=part.priority,
            tries=part.tries,
            successful=part.successful,
        )
        for part in row.partitions
    )
    return NodeDetail(row, lines)
