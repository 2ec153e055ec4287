"""``python -m coreroll.server [server options]``: the same as ``coreroll server``, without loading
the other subcommands (a faster start for subprocess tests)."""

from __future__ import annotations

import argparse
import sys

from coreroll.commands import server


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m coreroll.server")
    server.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["server", *sys.argv[1:]])
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
