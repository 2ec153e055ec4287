"""``python -m coreroll.server [server options]``: the same as ``coreroll server``, without loading
the CLI or the other subcommands (`coreroll.server.command` holds the server's command line)."""

from __future__ import annotations

import argparse
import sys

from coreroll.server import command


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m coreroll.server")
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["server", *sys.argv[1:]])
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
