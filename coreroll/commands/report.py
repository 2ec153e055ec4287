"""`coreroll report`: the node side for a real Flatcar host (update_engine + locksmithd, no Python
on the host: it runs in a container, `deploy/Dockerfile`, `deploy/coreroll-report.service`).

    coreroll report [--root DIR] [--etcd URL[,URL]] [--etcd-cafile F --etcd-certfile F
                    --etcd-keyfile F --etcd-username U --etcd-password P] [--report-interval S]
                    [--dbus-address ADDR] [--restart-command CMD] [--print]

Reads the host under DIR (default /; the container mounts it at /host), publishes the status
document and alive lease the simulated agent publishes, and runs the dashboard's queued commands
with the real tools (`coreroll.host`). It never reboots: locksmithd does. etcd: `--etcd`, else
COREROLL_ETCD / LOCKSMITHCTL_ENDPOINT, else the host's LOCKSMITHD_ENDPOINT from update.conf, else
locksmithctl's defaults. Everything it writes (status document, alive lease) and reads (commands)
is in etcd's v3 keyspace: it touches no reboot lock (locksmithd takes those, on whichever API it
speaks), so it has no --etcd-api and ignores LOCKSMITHCTL_ETCD_API. `--print` reads the host once, prints the document it would publish and
each problem found (stderr), and exits without touching etcd. SIGTERM/SIGINT stop it cleanly (the
alive key's lease is revoked).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path

from coreroll.commands import log_daemon_to_stderr, stop_on_signals
from coreroll.commands.lock import STRING_FLAGS, resolve
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdConfigError, EtcdUnavailableError
from coreroll.etcd.port import open_kv
from coreroll.host.dbus import SystemBus
from coreroll.host.facts import HostFileError, read_facts
from coreroll.host.reporter import HostReporter, ReportOptions
from coreroll.host.restart import command_restart
from coreroll.host.update_engine import UpdateEngine
from coreroll.host.view import HostView
from coreroll.textsafe import visible

log = logging.getLogger("coreroll.report")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="report a real Flatcar host (update_engine, USR partition) to etcd and run its commands",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root", default="/", metavar="DIR", help="the host's / (default /; /host in the container)"
    )
    parser.add_argument(
        "--etcd", "--endpoint", dest="endpoint", action="append", metavar="URL",
        help="etcd endpoint(s), repeatable or comma-separated (env COREROLL_ETCD)",
    )  # fmt: skip
    for name, text in STRING_FLAGS:
        if name not in ("group", "etcd-api"):
            parser.add_argument(f"--{name}", dest=name.replace("-", "_"), help=text + " (env LOCKSMITHCTL_*)")
    parser.add_argument(
        "--report-interval", type=float, default=30.0, metavar="S",
        help="seconds between full reads and reports (default 30; the alive lease lives 3x this)",
    )  # fmt: skip
    parser.add_argument(
        "--dbus-address", metavar="ADDR",
        help="the system bus (default: DBUS_SYSTEM_BUS_ADDRESS, else /var/run/dbus/system_bus_socket)",
    )  # fmt: skip
    parser.add_argument(
        "--restart-command", metavar="CMD",
        help="restart update_engine after a channel switch with this command (default: systemd over D-Bus)",
    )  # fmt: skip
    parser.add_argument(
        "--cgpt", default="cgpt", metavar="PATH", help="cgpt to read partition attributes with"
    )
    parser.add_argument(
        "--update-engine-client", default="update_engine_client", metavar="PATH",
        help="the fallback when update_engine is not reachable over D-Bus",
    )  # fmt: skip
    parser.add_argument("--print", action="store_true", help="print the status document once and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    # etcd_api="v3": node keys are v3 whatever LOCKSMITHCTL_ETCD_API says (that is for the locks)
    parser.set_defaults(handler=run, group=None, json=False, etcd_api="v3")


def _fail(message: str) -> int:
    print(f"coreroll report: {visible(message)}", file=sys.stderr)  # may quote the host's update.conf
    return 1


def _etcd_config(args: argparse.Namespace, root: Path) -> EtcdConfig:
    config, _, _, explicit = resolve(args)
    if not explicit:
        host_endpoints = read_facts(root).conf.locksmith_endpoints
        if host_endpoints:
            config = dataclasses.replace(config, endpoints=host_endpoints)
    return config


async def print_once(args: argparse.Namespace, root: Path) -> int:
    bus = SystemBus(args.dbus_address)
    engine = UpdateEngine(bus, lambda _snapshot, _problems: None, client_tool=args.update_engine_client)
    view = HostView(root, engine, cgpt=args.cgpt)
    await view.refresh()
    await bus.close()
    print(json.dumps(view.document(time.time()), indent=2))
    for problem in view.problems():
        print(f"problem: {problem}", file=sys.stderr)
    return 0


async def report(args: argparse.Namespace, root: Path, config: EtcdConfig) -> int:
    log.info("connecting to etcd at %s", visible(",".join(config.endpoints)))
    etcd = await open_kv(config, "v3")
    stop = stop_on_signals()
    options = ReportOptions(
        report_interval=args.report_interval,
        bus_address=args.dbus_address,
        cgpt=args.cgpt,
        client_tool=args.update_engine_client,
    )
    restart = command_restart(shlex.split(args.restart_command)) if args.restart_command else None
    reporter = HostReporter(root, etcd, etcd_config=config, options=options, restart=restart)
    log.info("reporting host %s (%s)", reporter.machine_id, reporter.view.facts.hostname)
    await reporter.start()
    await stop.wait()
    log.info("stopping: revoking the alive lease")
    await reporter.stop(clean=True)
    with contextlib.suppress(Exception):
        await etcd.close()
    return 0


def run(args: argparse.Namespace) -> int:
    log_daemon_to_stderr(args.verbose)
    if not 0 < args.report_interval <= 3600:
        return _fail(f"--report-interval must be > 0 and <= 3600, not {args.report_interval}")
    if args.restart_command is not None and not shlex.split(args.restart_command):
        return _fail("--restart-command is empty")
    root = Path(args.root)
    try:
        if args.print:
            return asyncio.run(print_once(args, root))
        config = _etcd_config(args, root)
        return asyncio.run(report(args, root, config))
    except HostFileError as exc:
        return _fail(str(exc))
    except (EtcdUnavailableError, EtcdConfigError) as exc:
        return _fail(str(exc))
    except (ValueError, OSError) as exc:
        return _fail(str(exc))


__all__ = ["register", "run"]
