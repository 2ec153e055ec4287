"""`coreroll etcd`: run an embedded etcd on a free loopback port, optionally around one command."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

from coreroll.etcd.launcher import EmbeddedEtcd, EtcdNotFoundError, EtcdStartError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "etcd",
        help="run an embedded etcd (127.0.0.1, free port), optionally around a command",
        description=(
            "Start an etcd of our own on a free 127.0.0.1 port. With a command after `--`, run it "
            "with COREROLL_ETCD and LOCKSMITHCTL_ENDPOINT pointing at that etcd, then stop etcd and "
            "exit with the command's status. Without one, wait until interrupted."
        ),
    )
    parser.add_argument("--data", metavar="DIR", help="keep etcd's data in DIR instead of a temporary dir")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    command = [a for a in args.argv if a != "--"] if args.argv else []
    try:
        etcd = EmbeddedEtcd(data_dir=args.data)
        print(f"starting embedded etcd ({etcd.binary}) ...", file=sys.stderr)
        etcd.start()
    except (EtcdNotFoundError, EtcdStartError) as exc:
        print(f"coreroll etcd: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"etcd ready at {etcd.endpoint}", file=sys.stderr)
        if command:
            env = dict(os.environ, COREROLL_ETCD=etcd.endpoint, LOCKSMITHCTL_ENDPOINT=etcd.endpoint)
            return subprocess.call(command, env=env)
        print("waiting for Ctrl-C to stop it", file=sys.stderr)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        etcd.stop(keep_data=bool(args.data))
