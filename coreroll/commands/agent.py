"""`coreroll agent`: run one node (update engine + reboot manager + etcd report) as a long-lived process.

    coreroll agent --state DIR --server URL --etcd URL[,URL] [--machine-id ID] [--time-factor X]
                   [--public-key PEM] [--group CHANNEL] [--strategy S] [--lock-group G]
                   [--initial-version V] [--report-interval S]

On the first run DIR is provisioned: a fresh disk (USR-A holding `--initial-version`), an
update.conf (GROUP, SERVER, REBOOT_STRATEGY, LOCKSMITHD_GROUP, LOCKSMITHD_ENDPOINT) and a
machine-id. Later runs use what DIR holds; `--server`, when it differs from SERVER in update.conf,
is written there. Each start is a boot of the simulated machine. SIGTERM/SIGINT stop it cleanly
(the alive key's lease is revoked). `COREROLL_SERVER` / `COREROLL_ETCD` stand in for the flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

from coreroll.commands import log_daemon_to_stderr, stop_on_signals
from coreroll.etcd.config import EtcdConfig, split_endpoints
from coreroll.etcd.errors import EtcdConfigError, EtcdUnavailableError
from coreroll.etcd.port import open_kv
from coreroll.node.agent import (
    MACHINE_ID,
    UPDATE_CONF,
    AgentOptions,
    NodeAgent,
    omaha_url,
    provision_node,
    read_machine_id,
)
from coreroll.node.clock import Clock, RealClock, ScaledClock
from coreroll.node.engine import EngineTimings
from coreroll.node.partitions import Disk, PartitionError
from coreroll.node.updateconf import UpdateConf

log = logging.getLogger("coreroll.agent")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "agent",
        help="run one node: update engine, reboot manager, status in etcd",
        description="Run one simulated node as a long-lived process (exits cleanly on SIGTERM).",
    )
    parser.add_argument("--state", required=True, metavar="DIR", help="the node's state directory")
    parser.add_argument(
        "--server", default=os.environ.get("COREROLL_SERVER"), metavar="URL", help="update server URL"
    )
    parser.add_argument(
        "--etcd", default=os.environ.get("COREROLL_ETCD"), metavar="URL[,URL]", help="etcd endpoints"
    )
    parser.add_argument("--machine-id", metavar="ID", help="machine id for a new state dir (default: random)")
    parser.add_argument("--time-factor", type=float, default=1.0, metavar="X", help="simulated time speed-up")
    parser.add_argument("--public-key", metavar="PEM", help="payload signing public key (else unchecked)")
    parser.add_argument("--group", default="stable", help="channel (GROUP) for a new state dir")
    parser.add_argument("--strategy", default="etcd-lock", help="REBOOT_STRATEGY for a new state dir")
    parser.add_argument("--lock-group", default="", help="LOCKSMITHD_GROUP for a new state dir")
    parser.add_argument("--initial-version", default="1.0.0", help="version installed in a new state dir")
    parser.add_argument(
        "--report-interval", type=float, default=30.0, metavar="S", help="seconds between status reports"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"coreroll agent: {message}", file=sys.stderr)
    return 1


def prepare_state(state: Path, args: argparse.Namespace, endpoints: tuple[str, ...]) -> str:
    """Provision `state` on the first run; keep SERVER in step with --server. Returns the machine id."""
    if not Disk.exists(state):
        machine_id = provision_node(
            state,
            version=args.initial_version,
            image=secrets.token_bytes(4096),
            server=args.server,
            group=args.group,
            strategy=args.strategy,
            lock_group=args.lock_group,
            machine_id=args.machine_id,
        )
        conf = UpdateConf.load(state / UPDATE_CONF)
        conf.set("LOCKSMITHD_ENDPOINT", ",".join(endpoints))
        conf.save(state / UPDATE_CONF)
        log.info("provisioned %s: machine id %s, version %s", state, machine_id, args.initial_version)
        return machine_id
    if not (state / MACHINE_ID).exists():
        raise ValueError(f"{state / MACHINE_ID} is missing (the state dir has a disk but no machine id)")
    conf = UpdateConf.load(state / UPDATE_CONF)
    for warning in conf.warnings:
        log.warning("%s", warning)
    wanted = omaha_url(args.server)
    if conf.get("SERVER") != wanted:
        conf.set("SERVER", wanted)
        conf.save(state / UPDATE_CONF)
        log.info("SERVER in %s set to %s", state / UPDATE_CONF, wanted)
    return read_machine_id(state)


async def run_agent(args: argparse.Namespace, config: EtcdConfig, clock: Clock) -> int:
    public_key = None
    if args.public_key:
        from coreroll.omaha.payload import load_public_key

        public_key = load_public_key(args.public_key)
    log.info("connecting to etcd at %s", ",".join(config.endpoints))
    etcd = await open_kv(config, "v3")
    stop = stop_on_signals()
    timings = EngineTimings()
    async with httpx.AsyncClient(timeout=30.0) as http:
        agent = NodeAgent(
            Path(args.state),
            etcd,
            http,
            clock,
            public_key=public_key,
            options=AgentOptions(report_interval=args.report_interval, timings=timings),
            etcd_config=config,
        )
        log.info("starting node %s (%s)", agent.machine_id, agent.hostname)
        await agent.start()
        await stop.wait()
        log.info("stopping: revoking the alive lease")
        await agent.stop()
    with contextlib.suppress(Exception):
        await etcd.close()
    return 0


def run(args: argparse.Namespace) -> int:
    log_daemon_to_stderr(args.verbose)
    if not args.server:
        return _fail("--server (or COREROLL_SERVER) is required")
    if not args.etcd:
        return _fail("--etcd (or COREROLL_ETCD) is required")
    if args.time_factor <= 0:
        return _fail(f"--time-factor must be > 0, not {args.time_factor}")
    if args.report_interval <= 0:
        return _fail(f"--report-interval must be > 0, not {args.report_interval}")
    try:
        config = EtcdConfig(endpoints=split_endpoints([args.etcd]))
        state = Path(args.state)
        prepare_state(state, args, config.endpoints)
    except (ValueError, OSError, PartitionError) as exc:
        return _fail(str(exc))
    clock: Clock = RealClock() if args.time_factor == 1 else ScaledClock(args.time_factor)
    try:
        return asyncio.run(run_agent(args, config, clock))
    except (EtcdUnavailableError, EtcdConfigError) as exc:
        return _fail(str(exc))
    except (ValueError, OSError, PartitionError) as exc:
        return _fail(str(exc))
