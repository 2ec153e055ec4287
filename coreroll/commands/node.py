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

from coreroll.node.engine_state import STATE_FILE, EngineState, EngineStateError, load_engine_state
from coreroll.node.partitions import Disk, PartitionError, cgpt_show


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


def read_status(state: Path) -> EngineState:
    """The engine's persisted status (coreroll.node.engine_state); ValueError naming the file."""
    path = state / STATE_FILE
    try:
        status = load_engine_state(path)
    except EngineStateError as exc:
        raise ValueError(str(exc)) from None
    if status is None:
        raise ValueError(f"{path}: no update_engine status (has the agent run here?)")
    return status


def format_status(status: EngineState) -> str:
    """update_engine_client -status: `printf("LAST_CHECKED_TIME=%lld\\nPROGRESS=%f\\n...")`."""
    return (
        f"LAST_CHECKED_TIME={int(status.last_checked_time)}\n"
        f"PROGRESS={float(status.progress):f}\n"
        f"CURRENT_OP={status.current_operation}\n"
        f"NEW_VERSION={status.new_version or '0.0.0.0'}\n"
        f"NEW_SIZE={int(status.new_size)}\n"
    )


def run_status(args: argparse.Namespace) -> int:
    try:
        status = read_status(Path(args.state))
        text = json.dumps(vars(status), indent=2) + "\n" if args.json else format_status(status)
    except (ValueError, TypeError) as exc:
        print(f"coreroll node status: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0
