"""`coreroll demo`: the whole system from one command: etcd, the update server, a fleet and a
scripted rollout, with the dashboard on top.

    coreroll demo [--nodes 60] [--time-factor 60] [--scenario rollout|bad-release|stuck-lock]
                  [--keep DIR] [--headless [--duration S]] [--seed N]

Scenarios: `rollout` (a release goes alpha -> beta -> stable under the reboot locks),
`bad-release` (it does not boot on some alpha nodes: rollbacks, safe mode halts alpha),
`stuck-lock` (a db node dies holding the reboot lock; press `u` on the stale holder).
`--headless` runs without the dashboard, prints a line per phase and a summary (nodes per version,
rollbacks, most lock holders seen per group against its max) and exits 0 only if the scenario's
checks held. Everything it starts stops on exit; its files are removed unless `--keep DIR`.

The dashboard is wired in `coreroll.commands.dashboard.demo` (loaded only without --headless); `coreroll`
never imports Textual.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from coreroll.demo.plan import SCENARIO_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole system on this machine: etcd, server, a simulated fleet, a rollout, the dashboard",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=int, default=60, metavar="N", help="simulated nodes (default 60)")
    parser.add_argument(
        "--time-factor", type=float, default=60.0, metavar="X",
        help="simulated seconds per real second (default 60: a minute per second)",
    )  # fmt: skip
    parser.add_argument(
        "--scenario", choices=SCENARIO_NAMES, default="rollout", help="what happens (default rollout)"
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="keep all state (etcd, server, nodes, demo.log) under DIR"
    )
    parser.add_argument("--headless", action="store_true", help="no dashboard: progress lines and a summary")
    parser.add_argument(
        "--duration", type=float, default=None, metavar="S",
        help="with --headless: give up after S real seconds (default 120)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="random seed for the fleet (default 1)")
    parser.add_argument("--mouse", action="store_true", help="enable the mouse in the dashboard")
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"coreroll demo: {message}", file=sys.stderr)
    return 1


def _options(args: argparse.Namespace, headless: bool) -> object:
    from coreroll.demo.system import DemoOptions

    return DemoOptions(
        nodes=args.nodes,
        time_factor=args.time_factor,
        scenario=args.scenario,
        keep=Path(args.keep) if args.keep else None,
        seed=args.seed,
        repeat=not headless and args.scenario == "rollout",
        auto_unlock_after=600.0 if headless else None,
    )


def run(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        return _fail(f"--nodes must be at least 1, not {args.nodes}")
    if args.time_factor <= 0:
        return _fail(f"--time-factor must be > 0, not {args.time_factor}")
    if args.duration is not None and not args.headless:
        return _fail("--duration only applies with --headless")
    if args.duration is not None and args.duration <= 0:
        return _fail(f"--duration must be > 0, not {args.duration}")
    try:
        options = _options(args, args.headless)
    except ValueError as exc:
        return _fail(str(exc))
    if args.headless:
        return asyncio.run(_headless(options, args.duration if args.duration is not None else 120.0))
    from coreroll.commands.dashboard.demo import run_demo
    from coreroll.commands.dashboard.ui import UIUnavailable, ui_module
    from coreroll.demo.system import DemoOptions

    try:
        ui_module("demo")
    except UIUnavailable as exc:
        return _fail(f"{exc}; use --headless")
    assert isinstance(options, DemoOptions)
    return run_demo(options, mouse=args.mouse)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _headless(options: object, duration: float) -> int:
    from coreroll.demo.scenarios import script_for
    from coreroll.demo.summary import summarize
    from coreroll.demo.system import DemoOptions, DemoSystem

    assert isinstance(options, DemoOptions)
    system = DemoSystem(options, on_phase=lambda p: print(p.line(), flush=True), on_progress=_progress)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # No handlers off the main thread (RuntimeError) or where the loop has none
        # (NotImplementedError): SIGINT then keeps Python's default, KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: main.cancel() if main else None)
    summary = None
    try:
        try:
            await system.start()
        except Exception as exc:
            return _fail(f"could not start: {exc}")
        print(
            f"scenario {options.scenario}: {options.nodes} nodes, x{options.time_factor:g}, "
            f"up to {duration:g} s; etcd {system.etcd_endpoint}, server {system.server_url}",
            flush=True,
        )
        await system.run(script_for(options.scenario), duration)
        summary = await summarize(system)
    except asyncio.CancelledError:
        print("interrupted: stopping everything ...", file=sys.stderr)
    finally:
        _progress("stopping the fleet, the server and etcd ...")
        await system.stop()
        if options.keep is not None:
            _progress(f"state kept in {system.base_dir}")
    if summary is None:
        return 1
    for line in summary.lines():
        print(line, flush=True)
    return 0 if summary.ok else 1
