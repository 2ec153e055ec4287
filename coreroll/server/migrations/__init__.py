"""Schema migrations: every schema change is an Alembic revision in ``versions/``.

``upgrade(conn, now)`` brings the database on ``conn`` (a sync connection inside the caller's
transaction: ``Storage`` runs it with ``run_sync``) to the head revision and returns what it did.
The script directory is this package (no ``alembic.ini`` at run time).

Revisions are named ``v<N>``, each revising ``v<N-1>``: ``v1``..``v4`` are the versions the
``schema_version`` table numbered before Alembic. On first contact with such a database (no
``alembic_version`` table) its ``schema_version`` is mapped to ``v<N>`` and the revisions after
it run. After every upgrade ``schema_version`` holds the head's number too, so a server from
before Alembic keeps refusing a database newer than itself.

A database at a revision this server does not know was written by a newer server: ``NewerSchema``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, insert, inspect, select

from coreroll.server import schema
from coreroll.server.migrations.pause import pause_hook

log = logging.getLogger("coreroll.server.migrations")
logging.getLogger("alembic").setLevel(logging.WARNING)  # our own lines say what ran; its INFO is noise
LEGACY_VERSIONS = 4  # the last version numbered only by the schema_version table
_REVISION_NAME = re.compile(r"v([1-9][0-9]*)")


class NewerSchema(RuntimeError):
    """The database was written by a newer coreroll server."""


class UnknownSchema(RuntimeError):
    """The database's schema version cannot be read."""


@dataclass(frozen=True)
class Upgrade:
    before: str | None  # the revision found (None: an empty database)
    after: str
    applied: tuple[str, ...]  # the revisions run, oldest first


def script_directory() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return ScriptDirectory.from_config(config)


def revision_number(revision: str) -> int:
    """``v7`` -> 7 (the number ``schema_version`` records for it)."""
    match = _REVISION_NAME.fullmatch(revision)
    if match is None:
        raise ValueError(f"revision {revision!r} is not named v<N>: create it with --rev-id v<N>")
    return int(match.group(1))


def upgrade(conn: Connection, now: float) -> Upgrade:
    script = script_directory()
    head = script.get_current_head()
    assert head is not None, "coreroll/server/migrations/versions holds no revision"
    context = MigrationContext.configure(conn)
    found = _found_revision(conn, context, script, head)
    applied: list[str] = []

    def steps(heads: Iterable[str], _context: MigrationContext) -> list[RevisionStep]:
        return script._upgrade_revs(head, tuple(heads))  # pyright: ignore[reportArgumentType]  # what alembic.command.upgrade runs: it too passes the heads tuple where str is annotated

    def applied_one(*, step: Any, **_: Any) -> None:
        revision = step.up_revision_id
        applied.append(revision)
        doc = " ".join((step.up_revision.doc or "").split())
        log.info("database schema: applied revision %s: %s", revision, doc)
        pause_hook(revision)

    config = Config()
    environment = EnvironmentContext(config, script, fn=steps)
    environment.configure(connection=conn, target_metadata=schema.metadata, on_version_apply=[applied_one])  # pyright: ignore[reportArgumentType]  # alembic calls each with keywords (ctx, step, heads, run_args); its alias says positional
    with environment:
        if found is not None and not context.get_current_heads():
            environment.get_context().stamp(script, found)  # first contact with a pre-Alembic database
        environment.run_migrations()
    _mark_legacy_table(conn, revision_number(head), now)
    if found is None:
        log.info("database schema created at revision %s", head)
    elif applied:
        log.warning(
            "database schema upgraded from version %d to %d (revisions %s)",
            revision_number(found),
            revision_number(head),
            ", ".join(applied),
        )
    return Upgrade(found, head, tuple(applied))


def _found_revision(
    conn: Connection, context: MigrationContext, script: ScriptDirectory, head: str
) -> str | None:
    """The database's revision: Alembic's, else the pre-Alembic ``schema_version`` mapped to ``v<N>``."""
    heads = context.get_current_heads()
    if heads:
        known = {r.revision for r in script.walk_revisions()}
        for revision in heads:
            if revision not in known:
                raise NewerSchema(
                    f"database schema revision {revision} is newer than this server's ({head}); upgrade coreroll"
                )
        if len(heads) != 1:
            raise UnknownSchema(f"database has several schema revisions ({', '.join(heads)}); expected one")
        return heads[0]
    if not inspect(conn).has_table(schema.schema_version.name):
        return None  # an empty database: every revision runs
    version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    if version is None:
        raise UnknownSchema("database has a schema_version table without a version: not made by coreroll?")
    if version > revision_number(head):
        raise NewerSchema(
            f"database schema version {version} is newer than this server's ({revision_number(head)}); "
            "upgrade coreroll"
        )
    if version > LEGACY_VERSIONS or version < 1:
        raise UnknownSchema(
            f"database schema version {version} has no alembic_version: not made by coreroll?"
        )
    return f"v{version}"


def _mark_legacy_table(conn: Connection, number: int, now: float) -> None:
    """Record ``number`` in ``schema_version``, read by servers from before Alembic."""
    found = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    if found is None or found < number:
        conn.execute(insert(schema.schema_version).values(version=number, applied_at=now))
