"""Server settings.

``ServerSettings`` holds everything `coreroll server` can be told: listen address, database URL
(``sqlite:///path`` default under the data dir, or ``postgresql://...``), data dir (payloads, token,
signing key, SQLite file), the admin token (else generated on first start into ``<data>/token``),
the stale window, trusted proxies (their ``X-Forwarded-For``/``-Proto``/``-Host`` are believed), the
public URL every handed-out link starts with, a cap on registered instances and on connected feed
clients (in all, and anonymous ones per address), the public key uploaded payloads must be signed
by, the connection bounds (``coreroll.server.connguard``: open connections, head/body/write
timeouts, keep-alive), retention (when to forget machines and old activity; ``check_retention``
refuses values that would lose what must stay) and the upstream sync (``--sync``: the server to
follow, how often, which channels and boards, ``--host-packages``).
``default_data_dir()`` is where the server and the CLI look by default.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from coreroll.server.forwarded import check_public_url, parse_networks

DEFAULT_LISTEN = "127.0.0.1:8400"
FLATCAR_UPSTREAM = "https://public.update.flatcar-linux.net/v1/update/"  # `--sync` without a URL
MIN_SYNC_INTERVAL = 60.0
DAY = 86400.0
# Rollout statistics only count machines seen within a day (registry.ACTIVE_WINDOW): forgetting
# a machine not seen for at least that long never changes a grant decision.
MIN_FORGET_AFTER = DAY
MIN_KEEP_ACTIVITY = 3600.0
_SECRET = re.compile(r"^[A-Za-z0-9._~-]{8,128}$")


def default_data_dir() -> Path:
    """``$COREROLL_DATA``, else ``$XDG_DATA_HOME/coreroll/server``, else ``~/.local/share/coreroll/server``."""
    explicit = os.environ.get("COREROLL_DATA")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "coreroll" / "server"


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8400"`` -> ``("127.0.0.1", 8400)``; ``"[::1]:80"`` works too. Raises ValueError."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def flag_duration(seconds: float) -> str:
    """``2592000`` -> ``"30d"``, ``5400`` -> ``"1.5h"``: a retention setting as an operator wrote it."""
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def check_retention(forget_after: float, keep_activity: float, stale_window: float) -> None:
    """Raise ValueError naming the flag when a retention setting would lose what it must keep."""
    for flag, value in (("--forget-instances-after", forget_after), ("--keep-activity", keep_activity)):
        if not 0 <= value < math.inf:  # NaN fails too
            raise ValueError(f"{flag} {value!r}: expected a duration (seconds), or never (0)")
    if forget_after and (forget_after < MIN_FORGET_AFTER or forget_after <= stale_window):
        raise ValueError(
            f"--forget-instances-after {flag_duration(forget_after)}: at least 1d and longer than --stale-window "
            f"({flag_duration(stale_window)}), or never: shorter would forget machines that are only between "
            "checks, off for a night, or still counted by a rollout"
        )
    if keep_activity and keep_activity < MIN_KEEP_ACTIVITY:
        raise ValueError(f"--keep-activity {flag_duration(keep_activity)}: at least 1h, or never")


@dataclass
class ServerSettings:
    listen: str = DEFAULT_LISTEN
    db_url: str | None = None  # None: sqlite:///<data_dir>/coreroll.db
    data_dir: Path = field(default_factory=default_data_dir)
    token: str | None = None  # None: COREROLL_TOKEN is NOT read here (the CLI does); file in data_dir
    stale_window_seconds: float = 7200.0
    trusted_proxies: tuple[str, ...] = ()
    instance_cap: int = 1_000_000
    new_instances_per_source: int = 1000  # new registrations per source IP per window (0: no limit)
    new_instances_window: float = 3600.0
    # the base of every URL handed out (Omaha codebase, API links, redirects); None: each request's
    # own origin (Host, or X-Forwarded-Host/-Proto from a trusted proxy: coreroll.server.forwarded)
    public_url: str | None = None
    poll_interval: int | None = None  # PollInterval sent with update checks
    feed_retention: int = 200_000  # changes kept for Last-Event-ID resumes
    # Connected anonymous /api/v1/feed clients; one more gets 503 (each costs a socket and a wake-up
    # per fan-out; a dashboard is one client; one sending the admin token is not counted).
    max_feed_clients: int = 256
    # How often the retention task runs (coreroll.server.retention): old feed changes, instances
    # not seen for forget_instances_after (never one in the middle of an update), instance history
    # and activity older than keep_activity. 0 in either: never.
    prune_interval_seconds: float = 60.0
    forget_instances_after: float = 30 * DAY
    keep_activity: float = 90 * DAY
    fixed_response_route: bool = False  # bench only: POST /bench/fixed answers a constant noupdate
    # After startup, collect and gc.freeze() the ~100k objects the frameworks leave behind, so the
    # cyclic GC stops rescanning them on every collection (about 2x checks/s, 5x lower p99). Only for
    # a process that is the server (`coreroll server`), not for servers started inside tests.
    freeze_gc: bool = False
    # HTTPS: both or neither (PEM files; uvicorn's ssl_certfile / ssl_keyfile)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Nebraska's --api-endpoint-suffix: when set, Omaha is served only at /v1/update/<secret>/
    omaha_secret: str | None = None
    # Anonymous feed clients per client address (IPv6: per /64; loopback exempt; 0: no limit). A
    # client sending the admin token is not counted here nor against max_feed_clients.
    max_feed_clients_per_address: int = 8
    # HTTP connections (coreroll.server.connguard): open at once; seconds a request head may take;
    # longest pause in a request body; seconds a client may take no response bytes; keep-alive idle.
    max_connections: int = 4096
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    write_timeout: float = 60.0
    keep_alive_timeout: float = 5.0
    # The fleet's update-payload-key.pub.pem: uploaded payloads and extras must be signed by it
    payload_key: Path | None = None
    # Follow this upstream Omaha server (coreroll.server.sync); None: no sync
    sync_url: str | None = None
    sync_interval: float = 3600.0  # seconds between passes (at least MIN_SYNC_INTERVAL)
    sync_channels: tuple[str, ...] = ("alpha", "beta", "stable")
    sync_boards: tuple[str, ...] = ("amd64-usr", "arm64-usr")
    host_packages: bool = False  # mirror synced payloads and extras into <data>/packages and serve them
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        parse_networks(self.trusted_proxies)  # a typo must not silently trust nobody
        if self.public_url is not None:
            self.public_url = check_public_url(self.public_url)
        if self.max_feed_clients < 0:
            raise ValueError(
                f"--max-feed-clients {self.max_feed_clients}: expected 0 (only clients with the token) or more"
            )
        if self.max_feed_clients_per_address < 0:
            raise ValueError(
                f"--max-feed-clients-per-address {self.max_feed_clients_per_address}: expected 0 (no limit) or more"
            )
        if self.max_connections < 1:
            raise ValueError(f"--max-connections {self.max_connections}: expected 1 or more")
        for flag, seconds in (("--header-timeout", self.header_timeout), ("--body-timeout", self.body_timeout),
                              ("--write-timeout", self.write_timeout), ("--keep-alive", self.keep_alive_timeout)):  # fmt: skip
            if not 0 < seconds < 86400:
                raise ValueError(f"{flag} {seconds:g}: expected seconds between 0 and 86400")
        check_retention(self.forget_instances_after, self.keep_activity, self.stale_window_seconds)
        if not 0 < self.prune_interval_seconds < math.inf:
            raise ValueError(f"retention interval {self.prune_interval_seconds!r}: expected seconds > 0")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both, or neither")
        if self.sync_interval < MIN_SYNC_INTERVAL:
            raise ValueError(
                f"--sync-interval {self.sync_interval:g}: at least {MIN_SYNC_INTERVAL:g} seconds"
            )
        if self.host_packages and self.sync_url is None:
            raise ValueError("--host-packages mirrors what --sync brings: give --sync too")
        if self.omaha_secret is not None and not _SECRET.match(self.omaha_secret):
            raise ValueError(
                "--omaha-secret: use 8-128 of letters, digits, '-', '_', '.', '~' (it becomes a URL path part)"
            )

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'coreroll.db'}"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "token"

    @property
    def packages_dir(self) -> Path:
        return self.data_dir / "packages"

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"
