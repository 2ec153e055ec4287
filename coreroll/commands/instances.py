"""`coreroll instances [--group G] [--status S] [--channel C] [--limit N] [--json]`: what each machine
last told the update server.

Every machine by default: pages of ``PAGE`` are fetched with the API's ``after`` cursor and printed
as they arrive (a fleet of 100,000 starts printing at once and never sits in memory whole). Every
string from the server is shown through ``coreroll.textsafe.visible`` in the table (a machine id or
a reason cannot drive the terminal); ``--json`` escapes them as JSON does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from coreroll.server.api_client import ApiClient, ApiError, add_connection_flags
from coreroll.textsafe import visible
from coreroll.wirenum import NumberError, parse_int

PAGE = 2000  # instances per request (the API allows up to 10,000)
HEADER = f"{'MACHINE ID':<32}  {'VERSION':<12} {'GROUP':<8} {'STATUS':<13} {'LAST CHECK':<20} REASON\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("instances", help="list the machines the update server knows")
    add_connection_flags(parser, top_level=True)
    parser.add_argument("--group", metavar="G")
    parser.add_argument("--status", metavar="S", help="e.g. OnHold, Error, UpdateGranted, Complete")
    parser.add_argument("--channel", metavar="C")
    parser.add_argument("--stale", choices=["true", "false"], help="only stale (or only fresh) instances")
    parser.add_argument("--limit", type=_positive, metavar="N", help="at most N rows (default: all)")
    parser.add_argument("--json", action="store_true", help="a JSON array of the API's instance objects")
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    try:
        return parse_int(text, "--limit", 1, 2**62)
    except NumberError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pages(api: ApiClient, args: argparse.Namespace, totals: list[int]) -> Iterator[dict[str, Any]]:
    """Every matching instance, one page at a time; ``totals`` gets the server's count per page."""
    after: str | None = None
    left = args.limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        page = api.get("/api/v1/instances", group=args.group, status=args.status, channel=args.channel,
                       stale=args.stale, limit=size, after=after)  # fmt: skip
        totals.append(page["total"])
        yield from page["instances"]
        if left is not None:
            left -= len(page["instances"])
        after = page.get("next")
        if after is None:
            return


def _row(i: dict[str, Any]) -> str:
    last = visible(i["last_check"] or "-")[:19].replace("T", " ")
    status = visible(i["status"]) + (" (stale)" if i["stale"] else "")
    return (
        f"{visible(i['machine_id']):<32}  {visible(i['version']):<12} {visible(i['group'] or '-'):<8} "
        f"{status:<13} {last:<20} {visible(i['status_reason'] or '')}"
    ).rstrip()


def run(args: argparse.Namespace) -> int:
    totals: list[int] = []  # the server's count, from each page
    shown = 0
    out = sys.stdout
    try:
        with ApiClient.from_args(args) as api:
            for instance in pages(api, args, totals):
                if args.json:
                    item = json.dumps(instance, indent=2).replace("\n", "\n  ")
                    out.write(f"{',' if shown else '['}\n  {item}")
                else:
                    out.write(("" if shown else HEADER) + _row(instance) + "\n")
                shown += 1
    except ApiError as exc:
        out.write("\n" if args.json and shown else "")
        out.flush()
        print(f"coreroll instances: {exc}", file=sys.stderr)
        return 1
    if args.json:
        out.write("\n]\n" if shown else "[]\n")
    elif not shown:
        out.write(HEADER)
    if totals and totals[-1] > shown:
        print(f"({shown} of {totals[-1]} shown; raise --limit)", file=sys.stderr)
    return 0
