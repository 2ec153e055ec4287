"""Version 3: ``releases.size`` is a BIGINT (PostgreSQL's INTEGER stops at 2 GiB; uploads may be 4 GiB).

SQLite keeps any integer in 8 bytes whatever the declaration; batch mode rebuilds the table there
anyway (copy, drop, rename, in the migration's transaction), so the declared type matches the
schema on every database.

Revision ID: v3
Revises: v2
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v3"
down_revision = "v2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.alter_column("size", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    raise NotImplementedError("coreroll never downgrades a database: restore a backup instead")
