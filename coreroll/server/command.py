"""`coreroll server`: run the update server; `coreroll server keygen`: make a payload signing key pair."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from coreroll.durations import duration
from coreroll.server import command_limits as server_limits
from coreroll.server import command_retention as server_retention
from coreroll.server.forwarded import startup_note
from coreroll.server.settings import (
    DEFAULT_LISTEN,
    FLATCAR_UPSTREAM,
    ServerSettings,
    default_data_dir,
    parse_listen,
)
from coreroll.server.versions import KNOWN_BOARDS

# Secrets a flag puts in /proc/<pid>/cmdline (readable by every local user), and where to put them instead
SECRET_FLAGS = (
    ("token", "--token", "COREROLL_TOKEN"),
    ("omaha_secret", "--omaha-secret", "COREROLL_OMAHA_SECRET"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "server",
        help="run the Omaha update server (channels, releases, rollout policy, live feed)",
        description=(
            "Serve Omaha v3 on /v1/update/, the JSON API under /api/v1 and payloads under /packages "
            "(see docs/api.md). The admin token is --token, else COREROLL_TOKEN, else <data>/token "
            "(created 0600 on first start)."
        ),
    )
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}"
    )
    parser.add_argument(
        "--db", metavar="URL", help="sqlite:///PATH (default <data>/coreroll.db) or postgresql://..."
    )
    parser.add_argument("--data", metavar="DIR", help=f"data directory (default {default_data_dir()})")
    parser.add_argument(
        "--token", metavar="T", help="admin bearer token (default: COREROLL_TOKEN, else <data>/token); on the "
        "command line every local user can read it (/proc/<pid>/cmdline): prefer COREROLL_TOKEN"
    )  # fmt: skip
    parser.add_argument("--stale-window", type=float, default=7200.0, metavar="SECONDS",
                        help="an instance not seen for this long is stale (default 7200)")  # fmt: skip
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="CIDR",
                        help="believe X-Forwarded-For/-Proto/-Host from this proxy address or network "
                        "(repeatable)")  # fmt: skip
    parser.add_argument("--forwarded-allow-ips", action="append", default=[], metavar="LIST",
                        help="uvicorn's spelling of --trusted-proxy: comma-separated addresses or networks")  # fmt: skip
    parser.add_argument("--instance-cap", type=int, default=1_000_000, metavar="N",
                        help="refuse to register more than N instances (default 1000000)")  # fmt: skip
    parser.add_argument("--new-instances-per-source", type=int, default=1000, metavar="N",
                        help="new machines one client IP may register per hour (default 1000, 0: no limit; "
                        "loopback is exempt)")  # fmt: skip
    server_retention.add_arguments(parser)
    parser.add_argument("--max-feed-clients", type=int, default=256, metavar="N",
                        help="anonymous live feed (/api/v1/feed) clients connected at once; one more gets 503 "
                        "(default 256; a client sending the admin token is not counted)")  # fmt: skip
    server_limits.add_arguments(parser)
    parser.add_argument("--public-url", metavar="URL",
                        help="https://NAME[:PORT][/PATH] nodes and clients reach the server at (behind a "
                        "proxy); every URL handed out starts with it (default: each request's origin)")  # fmt: skip
    parser.add_argument(
        "--poll-interval", type=int, metavar="SECONDS", help="PollInterval to send with update checks"
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain) file")
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument("--omaha-secret", metavar="S",
                        help="serve Omaha only at /v1/update/S/ (Nebraska's --api-endpoint-suffix; "
                        "default COREROLL_OMAHA_SECRET); update.conf then says SERVER=.../v1/update/S/. "
                        "On the command line every local user can read it: prefer COREROLL_OMAHA_SECRET")  # fmt: skip
    parser.add_argument("--payload-key", metavar="PEM",
                        help="the nodes' update-payload-key.pub.pem: refuse uploaded payloads and extras "
                        "not signed by it (without: a signature must be there, unverified)")  # fmt: skip
    parser.add_argument("--sync", nargs="?", const=FLATCAR_UPSTREAM, metavar="URL",
                        help="follow an upstream update server, as Nebraska's syncer does: record every "
                        f"new release per channel and board, move unpinned channels (default {FLATCAR_UPSTREAM})")  # fmt: skip
    parser.add_argument("--sync-interval", type=duration, default=3600, metavar="DURATION",
                        help="time between sync passes (default 1h, at least 1m; failures retry sooner, "
                        "with backoff)")  # fmt: skip
    parser.add_argument("--sync-channels", type=_names, default=("alpha", "beta", "stable"), metavar="A,B",
                        help="channels to follow (default alpha,beta,stable)")  # fmt: skip
    parser.add_argument("--sync-boards", type=_names, default=KNOWN_BOARDS, metavar="A,B",
                        help=f"boards to follow (default {','.join(KNOWN_BOARDS)})")  # fmt: skip
    parser.add_argument("--host-packages", action="store_true",
                        help="mirror each synced payload and extra into <data>/packages (checked whole, with "
                        "--payload-key) and serve it here, for air-gapped fleets; without it nodes download "
                        "from upstream's URLs")  # fmt: skip
    parser.add_argument("--bench-fixed-route", action="store_true", help=argparse.SUPPRESS)  # bench/omaha.py
    parser.set_defaults(handler=run)
    sub = parser.add_subparsers(dest="server_command", metavar="SUBCOMMAND")
    keygen = sub.add_parser("keygen", help="write an RSA-2048 payload signing key pair (private key 0600)")
    keygen.add_argument("--out", metavar="DIR", help="directory (default <data>/keys)")
    keygen.add_argument("--data", metavar="DIR", dest="keygen_data", help=argparse.SUPPRESS)
    keygen.set_defaults(handler=run_keygen)


def _settings(args: argparse.Namespace) -> ServerSettings:
    data = Path(args.data) if args.data else default_data_dir()
    return ServerSettings(
        listen=args.listen,
        db_url=args.db,
        data_dir=data,
        token=args.token or os.environ.get("COREROLL_TOKEN") or None,
        stale_window_seconds=args.stale_window,
        trusted_proxies=(
            *args.trusted_proxy,
            *(v for a in args.forwarded_allow_ips for v in a.split(",") if v),
        ),
        instance_cap=args.instance_cap,
        new_instances_per_source=args.new_instances_per_source,
        public_url=args.public_url,
        poll_interval=args.poll_interval,
        max_feed_clients=args.max_feed_clients,
        fixed_response_route=getattr(args, "bench_fixed_route", False),
        freeze_gc=True,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        omaha_secret=args.omaha_secret or os.environ.get("COREROLL_OMAHA_SECRET") or None,
        payload_key=Path(args.payload_key) if args.payload_key else None,
        sync_url=_sync_url(args.sync),
        sync_interval=float(args.sync_interval),
        sync_channels=args.sync_channels,
        sync_boards=args.sync_boards,
        host_packages=args.host_packages,
        **server_limits.settings_from(args),
        **server_retention.settings_from(args),
    )


def secret_warnings(args: argparse.Namespace) -> list[str]:
    """A warning for each secret given as a flag: any local user can read a command line."""
    return [
        f"warning: {flag} on the command line is visible to every local user (ps, /proc/<pid>/cmdline); "
        f"set {variable} instead (systemd: in the unit's EnvironmentFile, mode 0600)"
        for attribute, flag, variable in SECRET_FLAGS
        if getattr(args, attribute, None)
    ]


class _EncryptedKey(Exception):
    """OpenSSL asked for the key's pass phrase (without a callback it would prompt on the terminal)."""


def _no_pass_phrase() -> bytes:
    raise _EncryptedKey


def _names(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ("a", "b"): channel or board names (letters, digits, '-', '_', '.')."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not names or any(len(n) > 64 or not set(n) <= allowed for n in names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected names of letters, digits, '-', '_', '.', comma-separated"
        )
    return names


def _sync_url(url: str | None) -> str | None:
    """--sync's URL, checked here so a typo is one line at start, not a failure an hour later."""
    if url is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--sync {url!r}: expected an http:// or https:// URL of an Omaha endpoint")
    return url


def check_payload_key(settings: ServerSettings) -> None:
    """Load --payload-key once at start, so a wrong file is one clear line instead of a traceback."""
    if settings.payload_key is None:
        return
    from coreroll.omaha.payload import KeyFileError, load_public_key

    try:
        load_public_key(settings.payload_key)
    except (KeyFileError, OSError) as exc:
        raise ValueError(f"--payload-key: {exc}") from exc


def check_tls(settings: ServerSettings) -> None:
    """Load the certificate and key once, so a bad pair is one clear line instead of a traceback."""
    if settings.tls_cert is None or settings.tls_key is None:
        return
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key, password=_no_pass_phrase
        )
    except _EncryptedKey:
        raise ValueError(
            f"--tls-key {settings.tls_key}: encrypted key, no pass phrase (the server cannot ask for one); "
            f"write a decrypted copy only the server's user can read: "
            f"openssl pkey -in {settings.tls_key} -out KEY.pem && chmod 600 KEY.pem"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"--tls-cert {settings.tls_cert} / --tls-key {settings.tls_key}: {exc}") from exc


async def _check_database(url: str) -> None:
    """Open (and create or check the schema of) the database first, so a bad --db is one line."""
    from coreroll.server.storage import Storage

    storage = Storage(url, time.time)
    try:
        await storage.start()
    finally:
        await storage.close()


def run(args: argparse.Namespace) -> int:
    from coreroll.server.runner import serve_forever  # uvicorn/fastapi only when serving
    from coreroll.server.storage import StorageError, async_url

    try:
        parse_listen(args.listen)
        settings = _settings(args)
        async_url(settings.database_url)
        check_tls(settings)
        check_payload_key(settings)
    except (ValueError, StorageError) as exc:
        print(f"coreroll server: {exc}", file=sys.stderr)
        return 2
    for warning in secret_warnings(args):
        print(f"coreroll server: {warning}", file=sys.stderr)
    from coreroll.server.connguard import fit_to_file_limit

    settings.max_connections, too_few_files = fit_to_file_limit(settings.max_connections)
    if too_few_files:
        print(f"coreroll server: warning: {too_few_files}", file=sys.stderr)
    from coreroll.server.auth import TokenFileError, load_or_create_token

    try:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # before the database's lock file
        settings.token = load_or_create_token(settings)
        print(f"coreroll server: opening {settings.database_url.split('@')[-1]} ...", file=sys.stderr)
        asyncio.run(_check_database(settings.database_url))
    except (TokenFileError, OSError, StorageError) as exc:
        print(f"coreroll server: {exc}", file=sys.stderr)
        return 1
    print(
        f"coreroll server: listening on {settings.scheme}://{settings.listen} (data {settings.data_dir})",
        file=sys.stderr,
    )
    if note := startup_note(settings.listen, settings.public_url, settings.trusted_proxies):
        print(f"coreroll server: {note}", file=sys.stderr)
    try:
        if not serve_forever(settings):
            print("coreroll server: failed to start (see the error above)", file=sys.stderr)
            return 1
    except StorageError as exc:
        print(f"coreroll server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from coreroll.omaha.payload import KeyFileError, write_keypair

    base = Path(args.data) if getattr(args, "data", None) else default_data_dir()
    out = Path(args.out) if args.out else base / "keys"
    try:
        private, public = write_keypair(out)
    except (KeyFileError, OSError) as exc:
        print(f"coreroll server keygen: {exc}", file=sys.stderr)
        return 1
    print(f"private key: {private} (mode 0600)\npublic key:  {public}")
    return 0
