"""Version 4 (upstream sync, payload URLs): ``release_files.url``, ``channel_pins``, ``sync_state``,
``sync_refusals``.

Revision ID: v4
Revises: v3
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v4"
down_revision = "v3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("release_files", sa.Column("url", sa.String(2048), nullable=True))
    op.create_table(
        "channel_pins",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "sync_state",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("board", sa.String(64), primary_key=True),
        sa.Column("upstream_version", sa.String(64), nullable=True),
        sa.Column("synced_version", sa.String(64), nullable=True),
        sa.Column("last_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_success_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
    )
    op.create_table(
        "sync_refusals",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("board", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("coreroll never downgrades a database: restore a backup instead")
