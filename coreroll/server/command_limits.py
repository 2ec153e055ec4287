"""`coreroll server`'s flags for its connection bounds and feed slots (issue 16, defects 2 and 6).

``add_arguments(parser)`` defines them; ``settings_from(args) -> dict`` gives the
``ServerSettings`` fields they set. What they bound: ``coreroll.server.connguard`` and
``coreroll.server.feed``.
"""

from __future__ import annotations

import argparse
from typing import Any

from coreroll.server.settings import ServerSettings


def _default(name: str) -> Any:
    return getattr(ServerSettings, name)  # a dataclass field's default is the class attribute


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-feed-clients-per-address", type=int, default=_default("max_feed_clients_per_address"),
        metavar="N", help="anonymous live feed clients from one address (IPv6: one /64); one more gets 429 "
        f"(default {_default('max_feed_clients_per_address')}, 0: no limit; loopback is exempt; a client "
        "sending the admin token always gets a slot)",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=int, default=_default("max_connections"), metavar="N",
        help="HTTP connections open at once; one more closes the one waiting longest for a request "
        f"(503 when every one is busy) (default {_default('max_connections')}; needs about 2N+128 open "
        "files: raised up to the hard limit, the cap lowered with a warning if it cannot be)",
    )  # fmt: skip
    parser.add_argument(
        "--header-timeout", type=float, default=_default("header_timeout"), metavar="SECONDS",
        help=f"a request head must arrive within this, else 408 (default {_default('header_timeout'):g})",
    )  # fmt: skip
    parser.add_argument(
        "--body-timeout", type=float, default=_default("body_timeout"), metavar="SECONDS",
        help="longest pause in a request body, which must also keep up 1 KiB/s after that long, "
        f"else 408 (default {_default('body_timeout'):g})",
    )  # fmt: skip
    parser.add_argument(
        "--write-timeout", type=float, default=_default("write_timeout"), metavar="SECONDS",
        help="a client that takes no response bytes for this long (a feed client or download that "
        f"stopped reading) is disconnected (default {_default('write_timeout'):g})",
    )  # fmt: skip
    parser.add_argument(
        "--keep-alive", type=float, default=_default("keep_alive_timeout"), metavar="SECONDS",
        help=f"an idle keep-alive connection is closed after this (default {_default('keep_alive_timeout'):g})",
    )  # fmt: skip


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_feed_clients_per_address": args.max_feed_clients_per_address,
        "max_connections": args.max_connections,
        "header_timeout": args.header_timeout,
        "body_timeout": args.body_timeout,
        "write_timeout": args.write_timeout,
        "keep_alive_timeout": args.keep_alive,
    }
