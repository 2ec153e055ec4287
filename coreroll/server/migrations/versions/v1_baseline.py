"""Version 1: the first coreroll server's tables (what its ``create_all`` made).

A frozen copy: never import ``coreroll.server.schema`` into a revision (the next schema change
would change this one too).

Revision ID: v1
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "channels",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "channel_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_channel_history_channel", "channel_history", ["channel"])
    op.create_index("ix_channel_history_version", "channel_history", ["version"])
    op.create_table(
        "releases",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sha1", sa.String(64), nullable=False),
        sa.Column("signed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("track", sa.String(255), nullable=False, unique=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("updates_enabled", sa.Boolean(), nullable=False),
        sa.Column("max_updates_per_period", sa.Integer(), nullable=False),
        sa.Column("period_seconds", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("update_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("safe_mode", sa.Boolean(), nullable=False),
        sa.Column("office_hours", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("rollout_in_progress", sa.Boolean(), nullable=False),
        sa.Column("rollout_version", sa.String(64), nullable=True),
        sa.Column("halted_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("machine_id", sa.String(64), primary_key=True),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("track", sa.String(255), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("last_check", sa.Float(), nullable=False),
        sa.Column("last_update_version", sa.String(64), nullable=True),
        sa.Column("last_update_granted_at", sa.Float(), nullable=True),
        sa.Column("update_in_progress", sa.Boolean(), nullable=False),
        sa.Column("oem", sa.String(255), nullable=False),
        sa.Column("oemversion", sa.String(255), nullable=False),
        sa.Column("alephversion", sa.String(64), nullable=False),
        sa.Column("board", sa.String(64), nullable=False),
        sa.Column("bootid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_instances_group_status", "instances", ["group_id", "status"])
    op.create_index("ix_instances_group_granted", "instances", ["group_id", "last_update_granted_at"])
    op.create_index("ix_instances_group_update_version", "instances", ["group_id", "last_update_version"])
    op.create_table(
        "instance_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("machine_id", sa.String(64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("event_type", sa.Integer(), nullable=True),
        sa.Column("event_result", sa.Integer(), nullable=True),
        sa.Column("errorcode", sa.Integer(), nullable=True),
    )
    op.create_index("ix_instance_history_machine_id", "instance_history", ["machine_id"])
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("instance", sa.String(64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    raise NotImplementedError("coreroll never downgrades a database: restore a backup instead")
