"""The `coreroll` command: parses arguments and calls into the modules, nothing else.

Each module in `coreroll.commands` adds its own subcommand with `register(subparsers)` and sets
`handler` to a function taking the parsed namespace and returning the exit status. Keeping
subcommands in separate modules lets each part of the system own its command line.

Start-up is part of the interface (`coreroll lock status` must take well under 0.15 s, see
bench/cli_startup.py): `main` imports only the module of the command named on the command line;
the others appear in `coreroll --help` from `commands.SUMMARIES` (a test keeps that table equal to
what each module registers). `build_parser()` with no argument registers every module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from coreroll import __version__, commands

Handler = Callable[[argparse.Namespace], int]
DEFAULT_COMMAND = "dash"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `coreroll` parser; with `only`, just that command's module is imported and registered
    (the others are listed by name and summary)."""
    parser = argparse.ArgumentParser(
        prog="coreroll",
        description="CoreOS-style automatic updates: update server, node agent, reboot locks, dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"coreroll {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in commands.SUMMARIES.items():
        if only is None or name == only:
            importlib.import_module(f"{commands.__name__}.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def normalise_argv(argv: Sequence[str], names: set[str]) -> list[str]:
    """Let flags come before the subcommand (`coreroll --etcd X lock status`), as locksmithctl
    users type them, and run the dashboard when no subcommand is named."""
    args = list(argv)
    if not args or args[0] in names or args[0] in ("-h", "--help", "--version"):
        return args or ([DEFAULT_COMMAND] if DEFAULT_COMMAND in names else [])
    for index, token in enumerate(args):
        if token in names:
            return [token, *args[:index], *args[index + 1 :]]
    if DEFAULT_COMMAND in names:
        return [DEFAULT_COMMAND, *args]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    names = set(commands.SUMMARIES)
    args_in = normalise_argv(sys.argv[1:] if argv is None else argv, names)
    chosen = args_in[0] if args_in and args_in[0] in names else None
    parser = build_parser(only=chosen or "")
    args = parser.parse_args(args_in)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
