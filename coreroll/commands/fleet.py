"""`coreroll fleet`: run N simulated nodes against a real update server and etcd.

    coreroll fleet --nodes N --server URL --etcd URL [--scenario NAME] [--time-factor X]
                   [--state DIR] [--version V] [--public-key PEM] [--seed S] [--duration SECONDS]

Prints one progress line every `--progress` real seconds (simulated time, nodes up, versions,
nodes marked good, update statuses, lock holders, reboots) until Ctrl-C or `--duration`.
`--list-scenarios` prints the scenarios and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import httpx

from coreroll.commands import stop_on_signals
from coreroll.etcd.config import EtcdConfig, split_endpoints
from coreroll.etcd.errors import EtcdError
from coreroll.fleet.scenario import SCENARIOS, Scenario, get_scenario
from coreroll.fleet.sim import Fleet
from coreroll.node.clock import ScaledClock

DEFAULT_VERSION = "1.0.0"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fleet",
        help="run N simulated nodes (agents) against an update server and etcd",
        description="Run N node agents in one process on a scaled clock, with the scenario's lock "
        "groups, channels and faults, printing a progress line until interrupted. The update server "
        "keeps real time: its policy timeouts (update_timeout_seconds) are real seconds.",
    )
    parser.add_argument("--nodes", type=int, default=20, metavar="N", help="number of nodes (default 20)")
    parser.add_argument("--server", default=os.environ.get("COREROLL_SERVER"), help="update server URL")
    parser.add_argument(
        "--etcd", action="append", default=None, metavar="URL[,URL]", help="etcd endpoint(s) (COREROLL_ETCD)"
    )
    parser.add_argument("--scenario", default="mixed", help="scenario name (default mixed; --list-scenarios)")
    parser.add_argument(
        "--time-factor", type=float, default=60.0, metavar="X", help="simulated seconds per real second"
    )
    parser.add_argument("--state", metavar="DIR", help="keep node state dirs here (default: a temp dir)")
    parser.add_argument("--version", dest="initial_version", help="version the nodes are installed with")
    parser.add_argument("--public-key", metavar="PEM", help="verify payload signatures with this key")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many real seconds")
    parser.add_argument(
        "--progress", type=float, default=2.0, metavar="SECONDS", help="progress line interval"
    )
    parser.add_argument("--list-scenarios", action="store_true", help="print the scenarios and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what every node does")
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"coreroll fleet: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    if args.list_scenarios:
        for name, scenario in sorted(SCENARIOS.items()):
            print(f"{name:8} {scenario.description}")
        return 0
    try:
        scenario = get_scenario(args.scenario)
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    if args.nodes < 1:
        return _fail(f"--nodes must be at least 1, not {args.nodes}")
    if args.time_factor <= 0:
        return _fail(f"--time-factor must be > 0, not {args.time_factor}")
    if not args.server:
        return _fail("no update server: pass --server URL or set COREROLL_SERVER")
    endpoints = split_endpoints(args.etcd or [os.environ.get("COREROLL_ETCD", "")])
    if not endpoints:
        return _fail("no etcd: pass --etcd URL or set COREROLL_ETCD")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    public_key = None
    if args.public_key:
        from coreroll.omaha.payload import load_public_key

        try:
            public_key = load_public_key(args.public_key)
        except (OSError, ValueError) as exc:
            return _fail(f"--public-key {args.public_key}: {exc}")
    try:
        return asyncio.run(_run(args, scenario, EtcdConfig(endpoints=endpoints), public_key))
    except (EtcdError, httpx.HTTPError, OSError) as exc:
        return _fail(str(exc))


def _initial_version(server: str, channel: str) -> str:
    """The version the scenario's main channel points at now, so the fleet starts up to date."""
    url = f"{server.rstrip('/')}/api/v1/channels"
    try:
        reply = httpx.get(url, timeout=10)
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        raise OSError(f"update server {server} unreachable ({url}: {exc or type(exc).__name__})") from None
    for entry in reply.json().get("channels", []):
        if entry.get("name") == channel and entry.get("version"):
            return str(entry["version"])
    return DEFAULT_VERSION


async def _run(args: argparse.Namespace, scenario: Scenario, etcd: EtcdConfig, public_key: object) -> int:
    main_channel = max(scenario.channels, key=lambda c: scenario.channels[c])
    version = args.initial_version or await asyncio.to_thread(_initial_version, args.server, main_channel)
    with contextlib.ExitStack() as stack:
        if args.state:
            base = Path(args.state)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="coreroll-fleet-")))
        clock = ScaledClock(args.time_factor)
        fleet = Fleet(
            base,
            args.server,
            etcd,
            scenario,
            args.nodes,
            clock,
            version=version,
            image=f"coreroll simulated image {version}\n".encode() * 16,
            public_key=public_key,
            seed=args.seed,
        )
        print(
            f"starting {args.nodes} nodes (scenario {scenario.name}, version {version}, "
            f"x{args.time_factor:g}) against {args.server} and etcd {','.join(etcd.endpoints)}; "
            f"state in {base}",
            file=sys.stderr,
        )
        stop = stop_on_signals()
        loop = asyncio.get_running_loop()
        await fleet.start()
        try:
            deadline = loop.time() + args.duration if args.duration else None
            while not stop.is_set():
                wait = args.progress if deadline is None else min(args.progress, deadline - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, wait))
                print(f"fleet: {fleet.snapshot().line()}", file=sys.stderr, flush=True)
                if deadline is not None and loop.time() >= deadline:
                    break
        finally:
            print("stopping the fleet ...", file=sys.stderr)
            await fleet.stop()
        return 0
