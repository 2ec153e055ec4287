"""``python -m coreroll.server.migrations revision -m "what changed"``: write the next revision.

Builds a scratch SQLite database at the current head, compares it with ``schema.py`` (Alembic's
autogenerate) and writes ``versions/v<N+1>_<slug>.py`` with the difference. Read and complete it
(data moves, PostgreSQL-only statements, batch mode for SQLite) before committing it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from coreroll.server.migrations import revision_number, script_directory, upgrade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coreroll.server.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("revision", help="write the next revision from schema.py's changes")
    new.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    head = script_directory().get_current_head()
    number = revision_number(head) + 1 if head else 1
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'head.db'}")
        with engine.begin() as conn:
            upgrade(conn, 0.0)
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(Path(__file__).parent))
            config.attributes["connection"] = conn
            command.revision(
                config, args.message, autogenerate=True, rev_id=f"v{number}", head=head or "base"
            )
        engine.dispose()
    print(f"wrote revision v{number}: complete it, then run ruff format on it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
