"""`coreroll channel list|pin|unpin|sync`: channels, their pins and the upstream sync.

``pin CHANNEL VERSION`` points the channel at a release stored on the server and keeps it there:
the upstream sync (``coreroll server --sync``) records new releases but does not move it, and
``release point/promote`` refuse it until ``unpin``. ``sync`` starts a sync pass on the server now
and waits for it (``--wait``). ``list`` shows each channel with its version and pin and, on a
server that syncs, what upstream offers per board and the last failure (``--json``: the
``GET /api/v1/channels`` and ``GET /api/v1/sync`` objects).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from coreroll.server.api_client import (
    ApiClient,
    ApiError,
    add_connection_flags,
    resolve_server,
    resolve_token,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("channel", help="list channels, pin or unpin one, sync with upstream now")
    add_connection_flags(parser, top_level=True)
    sub = parser.add_subparsers(dest="channel_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", help="channels, pins and the upstream sync's state per board")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    pin = sub.add_parser(
        "pin", help="point a channel at a release and keep it there (the sync will not move it)"
    )
    pin.add_argument("channel")
    pin.add_argument("version")
    pin.set_defaults(handler=run_pin)
    unpin = sub.add_parser("unpin", help="let a pinned channel follow upstream again")
    unpin.add_argument("channel")
    unpin.set_defaults(handler=run_unpin)
    sync = sub.add_parser("sync", help="have the server ask upstream now (a server started with --sync)")
    sync.add_argument("--wait", type=int, default=600, metavar="SECONDS",
                      help="wait this long for the pass to end (default 600; 0: start it and return)")  # fmt: skip
    sync.add_argument("--json", action="store_true")
    sync.set_defaults(handler=run_sync)
    for child in (listing, pin, unpin, sync):
        add_connection_flags(child)


def _fail(exc: ApiError) -> int:
    print(f"coreroll channel: {exc}", file=sys.stderr)
    return 1


def _print_sync(report: dict[str, Any]) -> None:
    if not report.get("enabled") and not report.get("channels"):
        print("\nupstream sync: off (start the server with --sync [URL])")
        return
    if report.get("enabled"):
        print(f"\nupstream {report['upstream']} ({report['mode']} mode, every {report['interval_seconds']:g} s, "
              f"{report['passes']} passes, last {report['last_pass_at'] or '-'}, "
              f"next {report['next_pass_at'] or '-'})")  # fmt: skip
    print(f"{'CHANNEL':<9} {'BOARD':<10} {'UPSTREAM':<12} {'SYNCED':<12} {'LAST OK':<24} PROBLEM")
    for row in report.get("channels", ()):
        problem = row["last_error"] or "-"
        if row["failures"]:
            problem = f"({row['failures']} in a row) {problem}"
        print(f"{row['channel']:<9} {row['board']:<10} {row['upstream_version'] or '-':<12} "
              f"{row['synced_version'] or '-':<12} {row['last_success_at'] or '-':<24} {problem}")  # fmt: skip
    for refused in report.get("refused", ()):
        print(f"refused: {refused['version']} {refused['board']}: {refused['reason']}")


def run_list(args: argparse.Namespace) -> int:
    try:
        with ApiClient.from_args(args) as api:
            channels = api.get("/api/v1/channels")["channels"]
            report = api.get("/api/v1/sync")
    except ApiError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps({"channels": channels, "sync": report}, indent=2))
        return 0
    print(f"{'CHANNEL':<9} {'VERSION':<16} PINNED")
    for channel in channels:
        print(f"{channel['name']:<9} {channel['version'] or '-':<16} {channel.get('pinned') or '-'}")
    _print_sync(report)
    return 0


def run_pin(args: argparse.Namespace) -> int:
    try:
        with ApiClient.from_args(args) as api:
            channel = api.send("PUT", f"/api/v1/channels/{args.channel}/pin", {"version": args.version})
    except ApiError as exc:
        return _fail(exc)
    print(f"channel {channel['name']} pinned at {channel['pinned']}: the upstream sync will not move it")
    return 0


def run_unpin(args: argparse.Namespace) -> int:
    try:
        with ApiClient.from_args(args) as api:
            channel = api.send("DELETE", f"/api/v1/channels/{args.channel}/pin")
    except ApiError as exc:
        return _fail(exc)
    print(
        f"channel {channel['name']} unpinned (offers {channel['version'] or '-'}): it follows upstream again"
    )
    return 0


def run_sync(args: argparse.Namespace) -> int:
    if args.wait < 0 or args.wait > 3600:
        print("coreroll channel sync: --wait takes 0 to 3600 seconds", file=sys.stderr)
        return 2
    path = "/api/v1/sync" + (f"?wait={args.wait}" if args.wait else "")
    if args.wait:
        print(f"waiting up to {args.wait} s for the server's sync pass to end ...", file=sys.stderr)
    try:
        server, token = resolve_server(args.server), resolve_token(args.token)
        with ApiClient(server, token, timeout=args.wait + 30.0) as api:
            report = api.send("POST", path)
    except ApiError as exc:
        return _fail(exc)
    if not args.wait:
        print("sync pass started")
        return 0
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    _print_sync(report)
    failed = [row for row in report.get("channels", ()) if row["last_error"]]
    return 1 if failed else 0
