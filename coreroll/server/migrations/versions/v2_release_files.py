"""Version 2: one payload per board and the extras of each release, and release floors.

Releases stored by a version 1 server keep their file at ``<version>/<filename>``; the server
records each as its ``amd64-usr`` payload at start (``Publisher.adopt_legacy``: it reads the
file's header, which a revision cannot reach).

Revision ID: v2
Revises: v1
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v2"
down_revision = "v1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_files",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("board", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(512), nullable=False, unique=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sha1", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "release_floors",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("coreroll never downgrades a database: restore a backup instead")
