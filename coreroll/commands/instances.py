"""`coreroll instances [--group G] [--status S] [--channel C] [--stale] [--limit N] [--json]`: what
each machine last told the update server.

``--stale`` lists the machines the server's next retention run forgets (not seen for its
``--forget-instances-after``, not in the middle of an update), and says on stderr how many and
after how long; ``--stale true|false`` only filters on the stale window (not seen for
``--stale-window``, shown as "(stale)").

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
from coreroll.server.settings import flag_duration
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
    parser.add_argument("--stale", nargs="?", const=FORGETTABLE, type=_true_false, metavar="true|false",
                        help="alone: the machines the next retention run forgets (not seen for the server's "
                        "--forget-instances-after, not updating); true|false: only machines past (or within) "
                        "the stale window")  # fmt: skip
    parser.add_argument("--limit", type=_positive, metavar="N", help="at most N rows (default: all)")
    parser.add_argument("--json", action="store_true", help="a JSON array of the API's instance objects")
    parser.set_defaults(handler=run)


class _Forgettable:
    """``--stale`` with no value (not a string, so argparse does not run ``type`` on it)."""


FORGETTABLE = _Forgettable()


def _true_false(text: str) -> str:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected true or false (or --stale alone)")
    return text.lower()


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
        forgettable = args.stale is FORGETTABLE
        page = api.get("/api/v1/instances", group=args.group, status=args.status, channel=args.channel,
                       stale=None if forgettable else args.stale, forgettable="true" if forgettable else None,
                       limit=size, after=after)  # fmt: skip
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
    retention: dict[str, Any] = {}
    try:
        with ApiClient.from_args(args) as api:
            if args.stale is FORGETTABLE:
                info = api.get("/api/v1/info").get("retention")
                retention = info if isinstance(info, dict) else {}
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
    if args.stale is FORGETTABLE:
        print(forget_summary(retention, totals[-1] if totals else 0), file=sys.stderr)
    return 0


def forget_summary(retention: dict[str, Any], due: int) -> str:
    """One line: how many machines the next retention run forgets, and when that run is."""
    after = _number(retention.get("forget_instances_after_seconds"))
    if not after:
        return "forgetting machines is off on this server (--forget-instances-after never)"
    every = _number(retention.get("interval_seconds"))
    when = f" (it runs every {flag_duration(every)})" if every else ""
    machines = "machine" if due == 1 else "machines"
    return (
        f"{due} {machines} not seen for {flag_duration(after)} and not updating: the next retention run forgets "
        f"them{when}"
    )


def _number(value: object) -> float:
    """A positive number from the server's JSON, else 0 (hostile or missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e15:
        return 0.0
    return float(value)
