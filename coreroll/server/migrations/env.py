"""Alembic's env.py, run only by ``python -m coreroll.server.migrations revision`` (autogenerate):
the server itself runs revisions through ``coreroll.server.migrations.upgrade``."""

from __future__ import annotations

from alembic import context

from coreroll.server import schema

context.configure(connection=context.config.attributes["connection"], target_metadata=schema.metadata)
with context.begin_transaction():
    context.run_migrations()
