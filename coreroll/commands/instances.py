"""`coreroll instances [--group G] [--status S] [--channel C] [--json]`: what each machine last told
the update server."""

from __future__ import annotations

import argparse
import json
import sys

from coreroll.server.api_client import ApiClient, ApiError, add_connection_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("instances", help="list the machines the update server knows")
    add_connection_flags(parser, top_level=True)
    parser.add_argument("--group", metavar="G")
    parser.add_argument("--status", metavar="S", help="e.g. OnHold, Error, UpdateGranted, Complete")
    parser.add_argument("--channel", metavar="C")
    parser.add_argument("--stale", choices=["true", "false"], help="only stale (or only fresh) instances")
    parser.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N rows (default 1000)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        with ApiClient.from_args(args) as api:
            page = api.get("/api/v1/instances", group=args.group, status=args.status, channel=args.channel,
                           stale=args.stale, limit=args.limit)  # fmt: skip
    except ApiError as exc:
        print(f"coreroll instances: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(page["instances"], indent=2))
        return 0
    print(f"{'MACHINE ID':<32}  {'VERSION':<12} {'GROUP':<8} {'STATUS':<13} {'LAST CHECK':<20} REASON")
    for i in page["instances"]:
        last = (i["last_check"] or "-")[:19].replace("T", " ")
        status = i["status"] + (" (stale)" if i["stale"] else "")
        print(f"{i['machine_id']:<32}  {i['version']:<12} {i['group'] or '-':<8} {status:<13} {last:<20} "
              f"{i['status_reason'] or ''}".rstrip())  # fmt: skip
    if page["total"] > len(page["instances"]):
        print(f"({len(page['instances'])} of {page['total']} shown; use --limit)", file=sys.stderr)
    return 0
