"""The `coreroll` command: parses arguments and calls into the modules, nothing else.

Each module in `coreroll.commands` adds its own subcommand with `register(subparsers)` and sets
`handler` to a function taking the parsed namespace and returning the exit status. Keeping
subcommands in separate modules lets each part of the system own its command line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence

from coreroll import __version__, commands

Handler = Callable[[argparse.Namespace], int]
DEFAULT_COMMAND = "dash"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coreroll",
        description="CoreOS-style automatic updates: update server, node agent, reboot locks, dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"coreroll {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)
    return parser


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


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
    parser = build_parser()
    args_in = normalise_argv(sys.argv[1:] if argv is None else argv, _command_names(parser))
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
