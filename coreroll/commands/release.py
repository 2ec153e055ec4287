"""`coreroll release publish|promote|point|floor|list`: releases and channels over the server's HTTP API.

``publish --url URL`` records a payload served elsewhere (URL mode; ``--file F`` computes its size
and hashes from a local copy, else ``--size/--sha1/--sha256``; each ``--extra`` is then served
from the URL's directory). ``publish --file F`` uploads F under its own name (``--filename`` overrides) as the payload for
``--board`` (default amd64-usr); each ``--extra E`` is uploaded after it as an extra package of the
same board; ``--channel`` goes with the last upload, so a channel never points at a release whose
extras are still on their way; with ``--extra`` alone it is refused unless the release already has
a payload. ``--floor`` then marks the release mandatory. Before uploading
anything, an update_engine payload (CrAU version 1) is read whole as update_engine reads it and each
extra as download_sysext reads it (``coreroll.omaha.crau``, no key: the server verifies signatures
with its ``--payload-key``), so a broken file is refused here, naming what is wrong, in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from coreroll.server.api_client import ApiClient, ApiError, add_connection_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("release", help="publish, promote and list releases on the update server")
    add_connection_flags(parser, top_level=True)
    sub = parser.add_subparsers(dest="release_command", metavar="SUBCOMMAND", required=True)

    publish = sub.add_parser(
        "publish", help="publish a payload (a file, or a synthetic signed one) and extra packages"
    )
    source = publish.add_mutually_exclusive_group()
    publish.add_argument(
        "--file", metavar="F", help="payload file: an update_engine payload (CrAU version 1, e.g. "
        "flatcar_production_update.gz, checked whole before upload) or a coreroll signed payload; "
        "served under its own name"
    )  # fmt: skip
    source.add_argument(
        "--synthetic", action="store_true", help="have the server build and sign a synthetic payload"
    )
    source.add_argument("--url", metavar="URL",
                        help="URL mode: the payload is served there (any HTTP server, CDN or object store; "
                        "nodes download it from there, so servers on one PostgreSQL need no shared data dir); "
                        "with --file F its size and hashes are computed from F, else give --size, --sha1, "
                        "--sha256; each --extra F is then served from the URL's directory")  # fmt: skip
    publish.add_argument("--size", type=int, metavar="BYTES", help="--url without --file: the payload's size")
    publish.add_argument("--sha1", metavar="HASH", help="--url without --file: its SHA-1 (base64 or hex)")
    publish.add_argument("--sha256", metavar="HASH", help="--url without --file: its SHA-256 (base64 or hex)")
    publish.add_argument("--version", metavar="V",
                         help="release version (required with --file; --synthetic defaults to today's CoreOS "
                         "version, major = days since 2013-07-13)")  # fmt: skip
    publish.add_argument("--channel", metavar="C", help="point this channel at the release")
    publish.add_argument(
        "--filename", metavar="NAME", help="package name for --file (default: the file's name)"
    )
    publish.add_argument("--board", default="amd64-usr", metavar="B",
                         help="the board this payload is for: amd64-usr (default) or arm64-usr")  # fmt: skip
    publish.add_argument("--extra", action="append", default=[], metavar="F",
                         help="an extra package of the release for --board (e.g. oem-azure.gz, a CrAU "
                         "payload as download_sysext reads it), served next to the payload; repeatable; "
                         "alone it adds to an existing release")  # fmt: skip
    publish.add_argument("--opaque", action="store_true",
                         help="--file is not an update_engine payload: offer it to coreroll agents only")  # fmt: skip
    publish.add_argument("--floor", action="store_true",
                         help="mark the release mandatory: nodes below it get it before anything newer")  # fmt: skip
    publish.add_argument("--floor-reason", metavar="TEXT", help="why the release is a floor")
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

    floor = sub.add_parser("floor", help="mark a release mandatory (a floor), or clear the mark")
    floor.add_argument("version", metavar="V")
    floor.add_argument("--reason", metavar="TEXT", help="why it is a floor (shown in the release list)")
    floor.add_argument("--unset", action="store_true", help="clear the mark")
    floor.set_defaults(handler=run_floor)

    listing = sub.add_parser("list", help="list releases and channels")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    for child in (publish, promote, point, floor, listing):
        add_connection_flags(child)


def _fail(exc: ApiError | OSError) -> int:
    print(f"coreroll release: {exc}", file=sys.stderr)
    return 1


def _check_files(args: argparse.Namespace) -> None:
    """The CrAU payload of --file and every --extra, before any upload; raises PayloadRefused or OSError."""
    # protobuf and cryptography load here, not for every coreroll command
    from coreroll.omaha.crau import check_file
    from coreroll.omaha.crau_layout import PayloadRefused, Reader
    from coreroll.omaha.payload import UPDATE_ENGINE_PAYLOAD_VERSION, header_version

    def check(path: Path, reader: Reader) -> None:
        print(f"checking {path} ({path.stat().st_size} bytes) as {reader} reads it ...", file=sys.stderr)
        try:
            check_file(path, reader)
        except PayloadRefused as exc:
            raise PayloadRefused(reader, f"{path}: {exc.problem}", exc.code) from None

    if args.file:
        path = Path(args.file)
        with path.open("rb") as handle:
            head = handle.read(12)
        if header_version(head) == UPDATE_ENGINE_PAYLOAD_VERSION:  # other formats: the server decides
            check(path, Reader.UPDATE_ENGINE)
    for extra in args.extra:
        check(Path(extra), Reader.DOWNLOAD_SYSEXT)


def _upload(api: ApiClient, path: Path, params: dict[str, str]) -> dict[str, Any]:
    print(f"uploading {path} ({path.stat().st_size} bytes) to {api.server} ...", file=sys.stderr)
    with path.open("rb") as handle:
        return dict(api.upload("/api/v1/releases", handle, params))


def _payload_missing(api: ApiClient, version: str, channel: str) -> str | None:
    """Why ``--channel`` cannot go with extras alone (None: the release has a payload): the
    channel would point at a release with nothing to install, and every node be put on hold."""
    releases = api.get("/api/v1/releases").get("releases", [])
    release = next((r for r in releases if isinstance(r, dict) and r.get("version") == version), None)
    if release is not None and release.get("payloads"):
        return None
    return (
        f"release {version} has no payload: --channel {channel} with --extra alone would point "
        f"{channel} at a release every node is put on hold for; publish the payload with it "
        "(--file or --synthetic), or leave out --channel"
    )


def _url_bodies(args: argparse.Namespace) -> list[dict[str, Any]]:
    """URL mode: the JSON bodies to publish (the payload, then each --extra), hashes from the local
    copies or the flags; raises ValueError (a usage error) or OSError."""
    from coreroll.omaha.payload import UPDATE_ENGINE_PAYLOAD_VERSION, file_hashes, header_version

    common = {"version": args.version, "board": args.board}
    if args.file:
        with open(args.file, "rb") as handle:
            head = handle.read(12)
        if header_version(head) != UPDATE_ENGINE_PAYLOAD_VERSION and not args.opaque:
            raise ValueError(f"--file {args.file}: not an update_engine payload (CrAU version 1); "
                             "--opaque offers other bytes to coreroll agents only")  # fmt: skip
        print(f"hashing {args.file} ...", file=sys.stderr)
        size, sha256, sha1 = file_hashes(args.file)
    elif None in (args.size, args.sha1, args.sha256):
        raise ValueError(
            "--url needs --file F (to compute size and hashes) or all of --size, --sha1, --sha256"
        )
    else:
        size, sha256, sha1 = args.size, args.sha256, args.sha1
    fmt = "update_engine" if not args.opaque else "opaque"
    bodies = [{"url": args.url, "size": size, "sha256": sha256, "sha1": sha1, "format": fmt, **common}]
    directory = args.url.rpartition("/")[0]
    for extra in args.extra:
        size, sha256, sha1 = file_hashes(extra)
        bodies.append({"url": f"{directory}/{Path(extra).name}", "size": size, "sha256": sha256,
                       "sha1": sha1, "kind": "extra", **common})  # fmt: skip
    if args.channel:
        bodies[-1]["channel"] = args.channel  # the channel moves once every file is recorded
    return bodies


def _publish_urls(args: argparse.Namespace) -> int:
    try:
        bodies = _url_bodies(args)
    except ValueError as exc:
        print(f"coreroll release publish: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        return _fail(exc)
    try:
        with ApiClient.from_args(args) as api:
            release = [api.send("POST", "/api/v1/releases", body) for body in bodies][-1]
            if args.floor:
                release = api.send("PUT", f"/api/v1/releases/{release['version']}/floor",
                                   {"floor": True, "reason": args.floor_reason})  # fmt: skip
    except ApiError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(release, indent=2))
        return 0
    where = f", channel {args.channel}" if args.channel else ""
    print(f"published {release['version']} {args.board} at {args.url} ({bodies[0]['size']} bytes){where}"
          f"{', floor' if release.get('floor') else ''}")  # fmt: skip
    for body in bodies[1:]:
        print(f"  extra at {body['url']} ({body['size']} bytes)")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    if not (args.file or args.synthetic or args.extra or args.url):
        print("coreroll release publish: give --file, --synthetic, --url or --extra", file=sys.stderr)
        return 2
    if args.synthetic and args.file:
        print("coreroll release publish: --synthetic and --file go separately", file=sys.stderr)
        return 2
    if (args.size, args.sha1, args.sha256) != (None, None, None) and (args.file or not args.url):
        print(
            "coreroll release publish: --size, --sha1, --sha256 are for --url without --file", file=sys.stderr
        )
        return 2
    if args.url and not args.version:
        print("coreroll release publish: --url needs --version", file=sys.stderr)
        return 2
    if (args.file or args.extra) and not args.version:
        print("coreroll release publish: --file and --extra need --version", file=sys.stderr)
        return 2
    from coreroll.omaha.crau_layout import PayloadRefused

    try:
        _check_files(args)
    except PayloadRefused as exc:
        print(f"coreroll release: refused before upload: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        return _fail(exc)
    if args.url:
        return _publish_urls(args)
    try:
        with ApiClient.from_args(args) as api:
            if args.channel and not (args.file or args.synthetic):
                refusal = _payload_missing(api, args.version, args.channel)
                if refusal:
                    print(f"coreroll release publish: {refusal}", file=sys.stderr)
                    return 2
            uploads: list[tuple[Path, dict[str, str]]] = []
            if args.file:
                path = Path(args.file)
                params = {
                    "version": args.version,
                    "filename": args.filename or path.name,
                    "board": args.board,
                }
                if args.opaque:
                    params["opaque"] = "true"
                uploads.append((path, params))
            for extra in args.extra:
                extra_path = Path(extra)
                uploads.append((extra_path, {"version": args.version, "filename": extra_path.name,
                                             "board": args.board, "kind": "extra"}))  # fmt: skip
            if args.channel and uploads:
                uploads[-1][1]["channel"] = args.channel  # the channel moves once every file is there
            release: dict[str, Any] = {}
            if args.synthetic:
                body: dict[str, object] = {
                    "synthetic": True,
                    "image_size": args.image_size,
                    "board": args.board,
                }
                if args.version:
                    body["version"] = args.version
                if args.channel and not uploads:
                    body["channel"] = args.channel
                release = api.send("POST", "/api/v1/releases", body)
                if uploads:
                    for _path, params in uploads:
                        params["version"] = release["version"]
            for path, params in uploads:
                release = _upload(api, path, params)
            if args.floor:
                release = api.send("PUT", f"/api/v1/releases/{release['version']}/floor",
                                   {"floor": True, "reason": args.floor_reason})  # fmt: skip
    except (ApiError, OSError) as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(release, indent=2))
        return 0
    where = f", channel {args.channel}" if args.channel else ""
    floor = ", floor" if release.get("floor") else ""
    payload = next((p for p in release.get("payloads", ()) if p["board"] == args.board), None)
    if payload is not None and (args.file or args.synthetic):
        print(f"published {release['version']} {payload['board']} {payload['filename']} ({payload['size']} bytes, "
              f"{payload['format']}, sha256 {payload['sha256']}){where}{floor}")  # fmt: skip
    for extra in release.get("extras", ()):
        if extra["board"] == args.board and extra["filename"] in {Path(e).name for e in args.extra}:
            print(f"  extra {extra['filename']} ({extra['size']} bytes, sha256 {extra['sha256']})")
    if not (args.file or args.synthetic):
        print(
            f"release {release['version']}: {len(args.extra)} extra package(s) for {args.board}{where}{floor}"
        )
    return 0


def run_floor(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"floor": not args.unset}
    if args.reason and not args.unset:
        body["reason"] = args.reason
    try:
        with ApiClient.from_args(args) as api:
            release = api.send("PUT", f"/api/v1/releases/{args.version}/floor", body)
    except ApiError as exc:
        return _fail(exc)
    state = "a floor" if release["floor"] else "not a floor"
    print(
        f"release {release['version']} is {state}"
        + (f": {release['floor_reason']}" if release["floor_reason"] else "")
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
    print(
        f"{'VERSION':<16} {'SIZE':>10}  {'SIGNED':<6}  {'CHANNELS':<18}  {'BOARDS':<20}  {'FLOOR':<5}  CREATED"
    )
    for release in releases:
        boards = ",".join(p["board"] for p in release.get("payloads", ())) or "-"
        extras = len(release.get("extras", ()))
        boards += f" +{extras}" if extras else ""
        print(f"{release['version']:<16} {release['size']:>10}  {'yes' if release['signed'] else 'no':<6}  "
              f"{','.join(release['channels']) or '-':<18}  {boards:<20}  "
              f"{'yes' if release.get('floor') else 'no':<5}  {release['created_at']}")  # fmt: skip
    return 0
