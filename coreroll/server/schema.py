"""Database tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are stored as float seconds since the epoch (UTC): portable, cheap to compare, and turned
into ISO 8601 only at the JSON edge.

These tables are what the head revision of ``coreroll/server/migrations`` builds: a change here is
a new revision there (``python -m coreroll.server.migrations revision -m "..."``), and a test
fails when the two differ. ``schema_version`` numbered the versions before Alembic (1 to 4); it
still records the head's number, so an older server refuses a database newer than itself.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from coreroll.omaha.widths import (
    MAX_ALEPH_VERSION,
    MAX_BOARD,
    MAX_BOOT_ID,
    MAX_MACHINE_ID,
    MAX_OEM,
    MAX_OEM_VERSION,
    MAX_TRACK,
    MAX_VERSION,
)
from coreroll.server.policy import MAX_TIMEZONE

MAX_URL = 2048  # characters of a payload URL (release publish --url, upstream codebases)
MAX_IP = 64  # characters of a client address (app.client_ip never returns a longer one)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
    Column("applied_at", Float, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", String(64), nullable=True),
    Column("updated_at", Float, nullable=False),
)

# Every (channel, version) a channel has pointed at: promotion checks read it.
channel_history = Table(
    "channel_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False, index=True),
    Column("version", String(64), nullable=False, index=True),
    Column("at", Float, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused, even after pruning
)

releases = Table(
    "releases",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("filename", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),  # base64, as update_engine compares it
    Column("sha1", String(64), nullable=False),  # base64
    Column("signed", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Every file of a release: ``kind`` "payload" (one per board, what update_engine installs) or
# "extra" (Flatcar's oem-*.gz / flatcar-*.gz add-ons, listed after the payload). ``path`` is where
# it lives under <data>/packages and under /packages/ (``<version>/<board>/<filename>``; files of
# version 1 releases keep ``<version>/<filename>``). ``format``: "update_engine" (a CrAU version 1
# payload), "coreroll" (a signed synthetic container), "opaque" (agents only), "extra".
release_files = Table(
    "release_files",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("board", String(64), primary_key=True),
    Column("filename", String(255), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("path", String(512), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),  # base64
    Column("sha1", String(64), nullable=False),  # base64
    Column("format", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    # Set: the file is served there (URL mode), not from <data>/packages; None: hosted here.
    Column("url", String(2048), nullable=True),
)

# Releases marked mandatory: a node below one is offered it before anything newer (see catalog).
release_floors = Table(
    "release_floors",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)

# A pinned channel stays at its version: the upstream sync records new releases but never moves it.
channel_pins = Table(
    "channel_pins",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

# The upstream sync, per channel and board: the version upstream last offered (its target), the
# newest version stored here for it, when upstream was last asked and answered, the last failure.
sync_state = Table(
    "sync_state",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("board", String(64), primary_key=True),
    Column("upstream_version", String(64), nullable=True),
    Column("synced_version", String(64), nullable=True),
    Column("last_attempt_at", Float, nullable=True),
    Column("last_success_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("failures", Integer, nullable=False),
)

# Upstream releases refused at the door (bad metadata, bytes that do not match, a payload no node
# could apply): never offered; cleared when the same version and board is later stored.
sync_refusals = Table(
    "sync_refusals",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("board", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("at", Float, nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("track", String(MAX_TRACK), nullable=False, unique=True),
    Column("channel", String(64), nullable=False),
    Column("updates_enabled", Boolean, nullable=False),
    Column("max_updates_per_period", Integer, nullable=False),
    Column("period_seconds", Integer, nullable=False),
    Column("max_concurrent", Integer, nullable=False),
    Column("update_timeout_seconds", Integer, nullable=False),
    Column("safe_mode", Boolean, nullable=False),
    Column("office_hours", Boolean, nullable=False),
    Column("timezone", String(MAX_TIMEZONE), nullable=False),
    Column("rollout_in_progress", Boolean, nullable=False),
    Column("rollout_version", String(64), nullable=True),
    Column("halted_reason", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("machine_id", String(MAX_MACHINE_ID), primary_key=True),
    Column("ip", String(MAX_IP), nullable=False),
    Column("version", String(MAX_VERSION), nullable=False),
    Column("track", String(MAX_TRACK), nullable=False),
    Column("group_id", String(64), nullable=True),
    Column("status", Integer, nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("last_check", Float, nullable=False),
    Column("last_update_version", String(64), nullable=True),
    Column("last_update_granted_at", Float, nullable=True),
    Column("update_in_progress", Boolean, nullable=False),
    Column("oem", String(MAX_OEM), nullable=False),
    Column("oemversion", String(MAX_OEM_VERSION), nullable=False),
    Column("alephversion", String(MAX_ALEPH_VERSION), nullable=False),
    Column("board", String(MAX_BOARD), nullable=False),
    Column("bootid", String(MAX_BOOT_ID), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_instances_group_status", "group_id", "status"),
    Index("ix_instances_group_granted", "group_id", "last_update_granted_at"),
    Index("ix_instances_group_update_version", "group_id", "last_update_version"),
)

instance_history = Table(
    "instance_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("machine_id", String(MAX_MACHINE_ID), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Column("version", String(MAX_VERSION), nullable=False),
    Column("reason", Text, nullable=True),
    Column("event_type", Integer, nullable=True),
    Column("event_result", Integer, nullable=True),
    # As update_engine prints it (%d): signed 32-bit, so DevModeFlag (bit 31) fits PostgreSQL's
    # INTEGER. ``records.stored_errorcode`` / ``shown_errorcode`` convert; the API shows it unsigned.
    Column("errorcode", Integer, nullable=True),
)

activity = Table(
    "activity",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("group_id", String(64), nullable=True),
    Column("channel", String(64), nullable=True),
    Column("version", String(64), nullable=True),
    Column("instance", String(MAX_MACHINE_ID), nullable=True),
    Column("message", Text, nullable=False),
)

# The feed: one row per committed change, written in the same transaction as the change itself.
changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("data", Text, nullable=False),
    Column("at", Float, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused, even after pruning
)
