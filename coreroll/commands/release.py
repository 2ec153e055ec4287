"""`coreroll release publish|promote|point|list`: releases and channels over the server's HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from coreroll.server.api_client import ApiClient, ApiError, add_connection_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("release", help="publish, promote and list releases on the update server")
    add_connection_flags(parser, top_level=True)
    sub = parser.add_subparsers(dest="release_command", metavar="SUBCOMMAND", required=True)

    publish = sub.add_parser("publish", help="publish a payload (a file, or a synthetic signed one)")
    source = publish.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--file", metavar="F", help="payload file (a coreroll signed payload, or any opaque update.gz)"
    )
    source.add_argument(
        "--synthetic", action="store_true", help="have the server build and sign a synthetic payload"
    )
    publish.add_argument("--version", metavar="V",
                         help="release version (required with --file; --synthetic defaults to today's CoreOS "
                         "version, major = days since 2013-07-13)")  # fmt: skip
    publish.add_argument("--channel", metavar="C", help="point this channel at the release")
    publish.add_argument("--filename", metavar="NAME", help="package name for --file (default update.gz)")
    publish.add_argument(
        "--image-size", type=int, default=65536, metavar="BYTES", help="synthetic image size"
    )
    publish.add_argument("--json", action="store_true")
    publish.set_defaults(handler=run_publish)

    promote = sub.add_parser("promote", help="promote a release along alpha -> beta -> stable")
    promote.add_argument("version", metavar="V")
    promote.add_argument("--to", required=True, choices=["beta", "stable"])
    promote.set_defaults(handler=run_promote)

    point = sub.add_parser("point", help="point any channel at a release")
    point.add_argument("version", metavar="V")
    point.add_argument("--channel", required=True, metavar="C")
    point.set_defaults(handler=run_point)

    listing = sub.add_parser("list", help="list releases and channels")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    for child in (publish, promote, point, listing):
        add_connection_flags(child)


def _fail(exc: ApiError | OSError) -> int:
    print(f"coreroll release: {exc}", file=sys.stderr)
    return 1


def run_publish(args: argparse.Namespace) -> int:
    try:
        with ApiClient.from_args(args) as api:
            if args.synthetic:
                body: dict[str, object] = {"synthetic": True, "image_size": args.image_size}
                if args.version:
                    body["version"] = args.version
                if args.channel:
                    body["channel"] = args.channel
                release = api.send("POST", "/api/v1/releases", body)
            else:
                if not args.version:
                    print("coreroll release publish: --file needs --version", file=sys.stderr)
                    return 2
                path = Path(args.file)
                params = {"version": args.version, "filename": args.filename or "update.gz"}
                if args.channel:
                    params["channel"] = args.channel
                print(f"uploading {path} ({path.stat().st_size} bytes) to {api.server} ...", file=sys.stderr)
                with path.open("rb") as handle:
                    release = api.upload("/api/v1/releases", handle, params)
    except (ApiError, OSError) as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(release, indent=2))
    else:
        signed = "signed" if release["signed"] else "opaque"
        where = f", channel {args.channel}" if args.channel else ""
        print(
            f"published {release['version']} ({release['size']} bytes, {signed}, sha256 {release['sha256']}){where}"
        )
    return 0


def _move_channel(args: argparse.Namespace, method: str, path: str, body: dict[str, str]) -> int:
    """Send a request that answers with a channel, and say what the channel offers now."""
    try:
        with ApiClient.from_args(args) as api:
            channel = api.send(method, path, body)
    except ApiError as exc:
        return _fail(exc)
    print(f"channel {channel['name']} now offers {channel['version']}")
    return 0


def run_promote(args: argparse.Namespace) -> int:
    return _move_channel(args, "POST", f"/api/v1/releases/{args.version}/promote", {"to": args.to})


def run_point(args: argparse.Namespace) -> int:
    return _move_channel(args, "PUT", f"/api/v1/channels/{args.channel}", {"version": args.version})


def run_list(args: argparse.Namespace) -> int:
    try:
        with ApiClient.from_args(args) as api:
            releases = api.get("/api/v1/releases")["releases"]
            channels = api.get("/api/v1/channels")["channels"]
    except ApiError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps({"channels": channels, "releases": releases}, indent=2))
        return 0
    print("CHANNEL   VERSION")
    for channel in channels:
        print(f"{channel['name']:<9} {channel['version'] or '-'}")
    print()
    print(f"{'VERSION':<16} {'SIZE':>10}  {'SIGNED':<6}  {'CHANNELS':<18}  CREATED")
    for release in releases:
        print(f"{release['version']:<16} {release['size']:>10}  {'yes' if release['signed'] else 'no':<6}  "
              f"{','.join(release['channels']) or '-':<18}  {release['created_at']}")  # fmt: skip
    return 0
