"""`coreroll node`: look at a node's state directory the way the real tools print it.

- `coreroll node cgpt-show --state DIR`: the USR partition table as `cgpt show` lays it out.
- `coreroll node status --state DIR [--json]`: update_engine_client -status lines
  (LAST_CHECKED_TIME=, PROGRESS=, CURRENT_OP=, NEW_VERSION=, NEW_SIZE=) from the status the
  agent persists in `DIR/update_engine.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from coreroll.node.partitions import Disk, PartitionError, cgpt_show

STATUS_FILE = "update_engine.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "node", help="inspect a node's state directory (partitions, update status)"
    )
    sub = parser.add_subparsers(dest="node_command", metavar="SUBCOMMAND")
    show = sub.add_parser("cgpt-show", help="print the USR partition table like `cgpt show`")
    show.add_argument("--state", required=True, metavar="DIR", help="the node's state directory")
    show.add_argument("--json", action="store_true", help="print the table as JSON")
    show.set_defaults(handler=run_cgpt_show)
    status = sub.add_parser("status", help="print update_engine_client -status lines")
    status.add_argument("--state", required=True, metavar="DIR", help="the node's state directory")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=run_status)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_cgpt_show(args: argparse.Namespace) -> int:
    try:
        disk = Disk(args.state, fsync=False)
    except PartitionError as exc:
        print(f"coreroll node cgpt-show: {exc}", file=sys.stderr)
        return 1
    if args.json:
        table = [
            {
                "label": p.label,
                "number": p.number,
                "partuuid": p.partuuid,
                "type_guid": p.type_guid,
                "priority": p.priority,
                "tries": p.tries,
                "successful": p.successful,
                "version": p.version,
                "active": p.label == disk.active.label,
            }
            for p in disk.table()
        ]
        print(json.dumps(table, indent=2))
    else:
        sys.stdout.write(cgpt_show(disk))
    return 0


def read_status(state: Path) -> dict[str, Any]:
    """The engine's persisted status; raises ValueError naming the file when unreadable."""
    path = state / STATUS_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no update_engine status (has the agent run here?)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return doc


def format_status(doc: dict[str, Any]) -> str:
    """update_engine_client -status: `printf("LAST_CHECKED_TIME=%lld\\nPROGRESS=%f\\n...")`."""
    return (
        f"LAST_CHECKED_TIME={int(doc.get('last_checked_time') or 0)}\n"
        f"PROGRESS={float(doc.get('progress') or 0.0):f}\n"
        f"CURRENT_OP={doc.get('current_operation') or 'UPDATE_STATUS_IDLE'}\n"
        f"NEW_VERSION={doc.get('new_version') or '0.0.0.0'}\n"
        f"NEW_SIZE={int(doc.get('new_size') or 0)}\n"
    )


def run_status(args: argparse.Namespace) -> int:
    try:
        doc = read_status(Path(args.state))
        text = json.dumps(doc, indent=2) + "\n" if args.json else format_status(doc)
    except (ValueError, TypeError) as exc:
        print(f"coreroll node status: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0
